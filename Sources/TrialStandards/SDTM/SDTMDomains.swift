import Foundation
import TrialDomain

// SDTM (SDTMIG 3.3) datasets made from Casebook's records and the study definition. Sections are cited as
// "SDTMIG 3.3 §n". Everything study-specific — arms, elements, visits, criteria, trial summary values, vital-sign
// fields, lab tests — is read from the StudyDefinition; the code knows only SDTM and CDISC terminology.
//
// `SDTMExport` holds each dataset's metadata (`SDTMDomain`: variables with name, label, type, length, role, origin,
// codelist, method) and turns one participant's records (`SDTMSubjectData`) into rows in SDTM variable order. The
// trial design datasets come from the definition alone. Character lengths are declared up front: from the definition
// where it bounds the values (visit names, arm names, criterion texts, trial summary values), else from SDTM's limits;
// a longer value makes the XPORT writer fail naming dataset, variable and record.

// MARK: - Metadata

/// Define-XML's data types as SDTM uses them; dates and times are ISO 8601 text in the transport file.
public enum SDTMDataType: String, Hashable, Sendable {
    case text, integer, float, date, datetime, partialDatetime
    public var isNumeric: Bool { self == .integer || self == .float }
}

/// SDTMIG 3.3 §2.1: each variable's role in its observation class.
public enum SDTMRole: String, Hashable, Sendable {
    case identifier = "Identifier", topic = "Topic", timing = "Timing", groupingQualifier = "Grouping Qualifier"
    case resultQualifier = "Result Qualifier", synonymQualifier = "Synonym Qualifier", recordQualifier = "Record Qualifier"
    case variableQualifier = "Variable Qualifier", rule = "Rule"
}

/// SDTMIG 3.3 §4.1.5: required variables are never null, expected ones are always present, permissible ones optional.
public enum SDTMCore: String, Hashable, Sendable {
    case required = "Req", expected = "Exp", permissible = "Perm"
}

/// Define-XML 2.1 origin types, as used here.
public enum SDTMOriginType: String, Hashable, Sendable {
    case collected = "Collected", derived = "Derived", assigned = "Assigned", protocolDefined = "Protocol"
}

/// How a derived value is computed, for Define-XML's MethodDef.
public struct SDTMMethod: Hashable, Sendable {
    public var oid: String
    public var name: String
    public var description: String

    public init(oid: String, name: String, description: String) {
        self.oid = oid
        self.name = name
        self.description = description
    }
}

public struct SDTMTerm: Hashable, Sendable {
    public var value: String
    public var decode: String?
    /// NCI's code for the term, where it was verified.
    public var nci: String?

    public init(_ value: String, decode: String? = nil, nci: String? = nil) {
        self.value = value
        self.decode = decode
        self.nci = nci
    }
}

/// A dictionary the values come from (MedDRA, ISO 21090 null flavours) rather than a list of terms.
public struct SDTMDictionary: Hashable, Sendable {
    public var name: String
    public var version: String
}

public struct SDTMCodeList: Hashable, Sendable {
    public var oid: String
    public var name: String
    public var dataType: SDTMDataType
    public var terms: [SDTMTerm]
    /// NCI's code for the codelist, where it was verified.
    public var nci: String?
    /// CDISC controlled terminology; otherwise the sponsor's (from the study definition).
    public var isStandard: Bool
    public var dictionary: SDTMDictionary?

    public init(oid: String, name: String, dataType: SDTMDataType = .text, terms: [SDTMTerm], nci: String? = nil, isStandard: Bool, dictionary: SDTMDictionary? = nil) {
        self.oid = oid
        self.name = name
        self.dataType = dataType
        self.terms = terms
        self.nci = nci
        self.isStandard = isStandard
        self.dictionary = dictionary
    }
}

/// Value-level metadata: what a result variable holds for one value of another variable (LBORRES where LBTESTCD = ALT).
public struct SDTMValueListItem: Hashable, Sendable {
    public var whereVariable: String
    public var whereValue: String
    public var type: SDTMDataType
    public var length: Int?
    public var significantDigits: Int?
    public var description: String
    public var origin: SDTMOriginType
    public var codeList: SDTMCodeList?
}

public struct SDTMVariable: Hashable, Sendable {
    public var name: String
    public var label: String
    public var type: SDTMDataType
    /// Bytes in the transport file: 8 for numbers, the declared maximum for text.
    public var length: Int
    public var role: SDTMRole
    public var core: SDTMCore
    public var origin: SDTMOriginType
    public var method: SDTMMethod?
    public var codeList: SDTMCodeList?
    public var comment: String?
    public var significantDigits: Int?
    public var valueList: [SDTMValueListItem]

    public init(
        name: String, label: String, type: SDTMDataType, length: Int, role: SDTMRole, core: SDTMCore, origin: SDTMOriginType, method: SDTMMethod? = nil,
        codeList: SDTMCodeList? = nil, comment: String? = nil, significantDigits: Int? = nil, valueList: [SDTMValueListItem] = []
    ) {
        self.name = name
        self.label = label
        self.type = type
        self.length = length
        self.role = role
        self.core = core
        self.origin = origin
        self.method = method
        self.codeList = codeList
        self.comment = comment
        self.significantDigits = significantDigits
        self.valueList = valueList
    }

    public var xport: XPORTVariable {
        type.isNumeric ? .numeric(name, label: label) : .character(name, length: length, label: label)
    }
}

/// SDTMIG 3.3 §2.1: the general observation classes and the two special kinds of dataset.
public enum SDTMClass: String, Hashable, Sendable {
    case specialPurpose = "SPECIAL PURPOSE", interventions = "INTERVENTIONS", events = "EVENTS", findings = "FINDINGS"
    case trialDesign = "TRIAL DESIGN"
}

public struct SDTMDomain: Hashable, Sendable {
    public var name: String
    public var label: String
    public var sdtmClass: SDTMClass
    /// Define-XML's def:Structure: what one record is.
    public var structure: String
    /// The natural keys, in order.
    public var keys: [String]
    public var variables: [SDTMVariable]
    public var comment: String?

    public var isReferenceData: Bool { sdtmClass == .trialDesign }
    /// More than one record per subject (or, for trial design, per key).
    public var isRepeating: Bool { name != "DM" && sdtmClass != .trialDesign }
    public var dataset: XPORTDataset { XPORTDataset(name: name, label: label) }
    public var xportVariables: [XPORTVariable] { variables.map(\.xport) }
    /// SDTMIG 3.3 §3.2 (dataset names): one transport file per dataset, named after it in lower case.
    public var fileName: String { name.lowercased() + ".xpt" }

    public func variable(_ name: String) -> SDTMVariable? { variables.first { $0.name == name } }

    /// The same metadata with the character lengths the file was written with (after `.fitToData`).
    public func fitted(to written: [XPORTVariable]) -> SDTMDomain {
        var copy = self
        for (index, variable) in copy.variables.enumerated() where !variable.type.isNumeric {
            guard let w = written.first(where: { $0.name == variable.name }) else { continue }
            copy.variables[index].length = w.length
            // A value-level item is never longer than its variable.
            for item in copy.variables[index].valueList.indices {
                copy.variables[index].valueList[item].length = min(copy.variables[index].valueList[item].length ?? w.length, w.length)
            }
        }
        return copy
    }
}

/// What the definition does not hold but a submission states.
public struct SDTMOptions: Equatable, Sendable {
    /// TS ACTSUB; the definition's `lifecycle.enrollment.actual` when absent.
    public var actualSubjects: Int?
    /// TS DCUTDTC and DCUTDESC: when and why the data were cut.
    public var dataCutoff: Date?
    public var dataCutoffDescription: String?

    public init(actualSubjects: Int? = nil, dataCutoff: Date? = nil, dataCutoffDescription: String? = nil) {
        self.actualSubjects = actualSubjects
        self.dataCutoff = dataCutoff
        self.dataCutoffDescription = dataCutoffDescription
    }
}

public enum SDTMError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    case unknownDomain(String)
    case notSubjectDomain(String)
    case unknownSite(subject: String, site: String)
    case unknownArm(subject: String, arm: String)
    case unknownVisit(domain: String, subject: String, visit: String)
    case unknownCriterion(subject: String, criterion: String)
    case unknownDose(subject: String, dose: String)
    case unknownLabTest(subject: String, test: String)
    case foreignRecord(domain: String, subject: String, participant: String)
    case duplicateSubject(String)
    case invalidDate(domain: String, subject: String, value: String)
    case armCodeTooLong(arm: String, limit: Int)
    case vitalSignUnit(form: String, field: String, unit: String)

    public var description: String {
        switch self {
        case .unknownDomain(let d): "\(d) is not a dataset of this export"
        case .notSubjectDomain(let d): "\(d) is a trial design dataset: its rows come from the definition alone"
        case .unknownSite(let s, let site): "participant \(s): site \(site) is not in the study definition"
        case .unknownArm(let s, let arm): "participant \(s): arm \(arm) is not in the study definition"
        case .unknownVisit(let d, let s, let v): "\(d), participant \(s): visit \(v) is not in the study definition"
        case .unknownCriterion(let s, let c): "participant \(s): criterion \(c) is not in the study definition"
        case .unknownDose(let s, let dose): "participant \(s): dose \(dose) is in no plan of the arms allocated"
        case .unknownLabTest(let s, let t): "participant \(s): lab test \(t) is neither in the catalogue nor added by the study"
        case .foreignRecord(let d, let s, let p): "\(d): a record of participant \(p) was handed over with participant \(s)"
        case .duplicateSubject(let u): "USUBJID \(u) is given to two participants"
        case .invalidDate(let d, let s, let v): "\(d), participant \(s): '\(v)' is not a date (yyyy-MM-dd)"
        case .armCodeTooLong(let arm, let limit): "arm code \(arm) is longer than ARMCD's \(limit) characters (SDTMIG 3.3 §5.2)"
        case .vitalSignUnit(let f, let field, let u): "\(f).\(field): unit \(u) cannot be converted to the vital sign's standard unit"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - Controlled terminology

/// CDISC controlled terminology codes (NCI C-codes), only those verified against the CDISC CT 2020-12-18 terms that
/// the SAS-written SDTM 3.3 sample's Define-XML carries (../shared/reference/sdtm); other terms are written without one.
enum CDISCTerminology {
    static let version = "2020-12-18"

    struct List: Sendable {
        let nci: String?
        let terms: [String: String]
    }

    static let lists: [String: List] = [
        "NY": List(nci: "C66742", terms: ["N": "C49487", "Y": "C49488"]),
        "EPOCH": List(nci: "C99079", terms: ["SCREENING": "C48262", "TREATMENT": "C101526"]),
        "NRIND": List(nci: "C78736", terms: ["ABNORMAL": "C78802", "HIGH": "C78800", "LOW": "C78801", "NORMAL": "C78727"]),
        "OUT": List(nci: "C66768", terms: [
            "FATAL": "C48275", "NOT RECOVERED/NOT RESOLVED": "C49494", "RECOVERED/RESOLVED": "C49498",
            "RECOVERED/RESOLVED WITH SEQUELAE": "C49495", "RECOVERING/RESOLVING": "C49496", "UNKNOWN": "C17998",
        ]),
        "ACN": List(nci: "C66767", terms: [
            "DOSE INCREASED": "C49503", "DOSE NOT CHANGED": "C49504", "DOSE REDUCED": "C49505", "DRUG INTERRUPTED": "C49501",
            "DRUG WITHDRAWN": "C49502", "NOT APPLICABLE": "C48660", "UNKNOWN": "C17998",
        ]),
        "IECAT": List(nci: "C66797", terms: ["EXCLUSION": "C25370", "INCLUSION": "C25532"]),
        "DSCAT": List(nci: "C74558", terms: ["DISPOSITION EVENT": "C74590", "PROTOCOL MILESTONE": "C74588"]),
        "NCOMPLT": List(nci: "C66727", terms: [
            "ADVERSE EVENT": "C41331", "COMPLETED": "C25250", "DEATH": "C28554", "LOST TO FOLLOW-UP": "C48227", "OTHER": "C17649",
            "PHYSICIAN DECISION": "C48250", "PREGNANCY": "C25742", "PROTOCOL DEVIATION": "C48251", "SCREEN FAILURE": "C49628",
            "STUDY TERMINATED BY SPONSOR": "C49632", "WITHDRAWAL BY SUBJECT": "C49634",
        ]),
        "PROTMLST": List(nci: "C114118", terms: ["INFORMED CONSENT OBTAINED": "C16735"]),
        "SEX": List(nci: "C66731", terms: ["F": "C16576", "M": "C20197"]),
        "AGEU": List(nci: "C66781", terms: ["YEARS": "C29848"]),
        "ARMNRS": List(nci: "C142179", terms: ["SCREEN FAILURE": "C49628"]),
        "STYPE": List(nci: "C99077", terms: ["INTERVENTIONAL": "C98388"]),
        "INTMODEL": List(nci: "C99076", terms: ["PARALLEL": "C82639"]),
        "INTTYPE": List(nci: "C99078", terms: ["DRUG": "C1909"]),
        "TBLIND": List(nci: "C66735", terms: ["DOUBLE BLIND": "C15228"]),
        "TCNTRL": List(nci: "C66785", terms: ["PLACEBO": "C49648"]),
        "TINDTP": List(nci: "C66736", terms: ["TREATMENT": "C49656"]),
        "TPHASE": List(nci: "C66737", terms: ["PHASE II TRIAL": "C15601"]),
        "SEXPOP": List(nci: nil, terms: ["BOTH": "C49636"]),
        "ROUTE": List(nci: "C66729", terms: [
            "INTRAVENOUS": "C38276", "NASAL": "C38284", "ORAL": "C38288", "SUBCUTANEOUS": "C38299", "TOPICAL": "C38304", "TRANSDERMAL": "C38305",
        ]),
        "TSPARMCD": List(nci: "C66738", terms: [
            "ACTSUB": "C98703", "ADAPT": "C146995", "ADDON": "C49703", "AGEMAX": "C49694", "AGEMIN": "C49693", "DCUTDESC": "C98718",
            "DCUTDTC": "C98717", "DOSE": "C25488", "DOSFRM": "C42636", "DOSFRQ": "C89081", "DOSU": "C73558", "FCNTRY": "C98770",
            "HLTSUBJI": "C98737", "INDIC": "C112038", "INTMODEL": "C98746", "INTTYPE": "C98747", "LENGTH": "C49697", "NARMS": "C98771",
            "OBJPRIM": "C85826", "OBJSEC": "C85827", "OUTMSPRI": "C98772", "OUTMSSEC": "C98781", "PCLAS": "C98768", "PLANSUB": "C49692",
            "RANDOM": "C25196", "RANDQT": "C98775", "REGID": "C98714", "ROUTE": "C38114", "SDTIGVER": "C156604", "SDTMVER": "C156605",
            "SENDTC": "C90462", "SEXPOP": "C49696", "SPONSOR": "C70793", "SSTDTC": "C69208", "STOPRULE": "C49698", "STYPE": "C142175",
            "TBLIND": "C49658", "TCNTRL": "C49647", "TDIGRP": "C49650", "TINDTP": "C49652", "TITLE": "C49802", "TPHASE": "C48281",
            "TRT": "C41161", "TTYPE": "C49660",
        ]),
        "LBTESTCD": List(nci: "C65047", terms: [
            "ALB": "C64431", "ALP": "C64432", "ALT": "C64433", "AST": "C64467", "BILI": "C38037", "CREAT": "C64547", "GGT": "C64847",
            "PLAT": "C51951", "SODIUM": "C64809", "WBC": "C51948",
        ]),
        "VSTESTCD": List(nci: "C66741", terms: ["DIABP": "C25299", "HEIGHT": "C25347", "SYSBP": "C25298", "TEMP": "C25206", "WEIGHT": "C25208"]),
        "VSRESU": List(nci: "C66770", terms: ["C": "C42559", "F": "C44277", "LB": "C48531", "beats/min": "C49673", "cm": "C49668", "in": "C48500", "kg": "C28252", "mmHg": "C49670"]),
    ]

    static func code(_ list: String, _ term: String) -> String? { lists[list]?.terms[term] }

    /// A codelist of CDISC terms, each with its C-code where verified.
    static func codeList(_ list: String, name: String, terms: [String], decodes: [String: String] = [:], oid: String? = nil) -> SDTMCodeList {
        SDTMCodeList(
            oid: oid ?? "CL.\(list)", name: name, terms: terms.map { SDTMTerm($0, decode: decodes[$0], nci: code(list, $0)) }, nci: lists[list]?.nci,
            isStandard: true)
    }
}

// MARK: - Text

/// Transport files hold ASCII (XPORT.swift): the definition's and the records' text is transliterated where a
/// character has a usual ASCII spelling; anything left over makes the writer fail naming the value.
public enum SDTMText {
    static let replacements: [Character: String] = [
        "≥": ">=", "≤": "<=", "≠": "!=", "–": "-", "—": "-", "−": "-", "×": "x", "µ": "u", "μ": "u", "°": " deg", "±": "+/-",
        "‘": "'", "’": "'", "“": "\"", "”": "\"", "…": "...", "·": ".", "→": "->", "²": "2", "³": "3", "\u{00A0}": " ",
    ]

    public static func ascii(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        var out = ""
        for character in text {
            if character.isASCII {
                out.append(character)
            } else if let replacement = replacements[character] {
                out += replacement
            } else {
                let folded = String(character).folding(options: [.diacriticInsensitive, .widthInsensitive], locale: nil)
                out += folded
            }
        }
        return out
    }

    /// A number as short as it reads: 17.1, not 17.100000000000001; integers without a decimal point.
    public static func number(_ value: Double) -> String {
        let rounded = Double(String(format: "%.10g", value)) ?? value
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int(rounded)) }
        return String(rounded)
    }
}

// MARK: - Times

/// A moment on a site's calendar: the day (for --DY and epochs), the instant where known, and the ISO 8601 text.
struct SDTMLocalTime {
    /// Days since 1970-01-01 on the site's calendar.
    let day: Int
    let instant: Date?
    let iso: String

    static func of(_ date: Date, in zone: TimeZone) -> SDTMLocalTime {
        let local = Int((date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))).rounded(.down))
        let day = Int((Double(local) / 86_400).rounded(.down))
        let second = local - day * 86_400
        let (y, m, d) = civil(day)
        let iso = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, second / 3600, second % 3600 / 60, second % 60)
        return SDTMLocalTime(day: day, instant: date, iso: iso)
    }

    static func of(day text: String) -> SDTMLocalTime? {
        guard let date = DateParsing.day(text) else { return nil }
        let day = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        let (y, m, d) = civil(day)
        return SDTMLocalTime(day: day, instant: nil, iso: String(format: "%04d-%02d-%02d", y, m, d))
    }

    static func of(_ value: SDTMDate, in zone: TimeZone) -> SDTMLocalTime? {
        switch value {
        case .instant(let date): of(date, in: zone)
        case .day(let text): of(day: text)
        }
    }

    /// Strictly earlier; a day without a time is compared by day.
    func isBefore(_ other: SDTMLocalTime) -> Bool {
        if let a = instant, let b = other.instant { return a < b }
        return day < other.day
    }

    func isNotAfter(_ other: SDTMLocalTime) -> Bool {
        if let a = instant, let b = other.instant { return a <= b }
        return day <= other.day
    }

    /// The day as midnight UTC, as DateParsing reads a date.
    var utcDay: Date { Date(timeIntervalSince1970: Double(day) * 86_400) }

    /// H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days.
    static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// SDTMIG 3.3 §4.4.4: study day is the date minus RFSTDTC's date, plus one on or after it; there is no day 0.
func sdtmStudyDay(_ time: SDTMLocalTime?, from reference: SDTMLocalTime?) -> Double? {
    guard let time, let reference else { return nil }
    let apart = time.day - reference.day
    return Double(apart >= 0 ? apart + 1 : apart)
}

// MARK: - The planned timeline

/// Every anchor, dose and visit placed on one nominal time axis (seconds from the first visit that defines an anchor
/// by happening), from the definition's targets: the visit that defines an anchor, each dose's anchor and target,
/// and the anchors' sources. Visits whose anchor cannot be placed stay unplaced.
struct SDTMTimeline {
    var anchors: [String: Double] = [:]
    var visits: [String: Double] = [:]
    static let allocationNode = "@allocation"

    init(_ study: StudyDefinition) {
        var edges: [(node: String, base: String, offset: Double)] = []
        for visit in study.visits {
            if let defined = visit.defines, let anchor = visit.anchor { edges.append((defined, anchor, visit.target?.seconds ?? 0)) }
        }
        for arm in study.arms {
            for dose in arm.doses ?? [] { edges.append((dose.code, dose.anchor, dose.target.seconds)) }
        }
        // Anchor.source: `first_dose` (read also from `infusion`) is an arm's first dose, `dose:CODE` that dose.
        let firstDose = study.arms.lazy.compactMap { $0.doses?.first?.code }.first
        for anchor in study.anchors {
            guard let source = anchor.source else { continue }
            if source == "allocation" {
                edges.append((anchor.code, Self.allocationNode, 0))
            } else if source == "first_dose" || source == "infusion" {
                if let firstDose { edges.append((anchor.code, firstDose, 0)) }
            } else if source.hasPrefix("dose:") {
                edges.append((anchor.code, String(source.dropFirst(5)), 0))
            }
        }
        // The allocation window's earliest day places the allocation when nothing else does.
        if let window = study.randomization.window { edges.append((Self.allocationNode, window.anchor, window.earliest.seconds)) }

        var known: [String: Double] = [:]
        if let root = study.visits.first(where: { $0.anchor == nil && $0.defines != nil })?.defines {
            known[root] = 0
        } else if let first = study.anchors.first?.code {
            known[first] = 0
        }
        var changed = true
        while changed {
            changed = false
            for edge in edges {
                if let base = known[edge.base], known[edge.node] == nil {
                    known[edge.node] = base + edge.offset
                    changed = true
                } else if let node = known[edge.node], known[edge.base] == nil {
                    known[edge.base] = node - edge.offset
                    changed = true
                }
            }
        }
        anchors = known
        for visit in study.visits {
            if let anchor = visit.anchor {
                if let base = known[anchor] { visits[visit.code] = base + (visit.target?.seconds ?? 0) }
            } else if let defined = visit.defines, let at = known[defined] {
                visits[visit.code] = at
            }
        }
    }
}

// MARK: - Trial design

/// Arms, elements and epochs read from the definition (SDTMIG 3.3 §7.2): every arm is screening, then one treatment
/// element per arm it passes through (a later randomization stage moves a participant from one arm's element to
/// the next), then follow-up.
struct SDTMTrialDesign {
    struct Element: Equatable {
        var code: String
        var name: String
        var startRule: String
        var endRule: String
    }

    struct Step {
        var arm: Arm
        /// The stage that moved the participant into this arm, with the option drawn.
        var stage: StageRandomization?
        var option: String?
    }

    static let screening = "SCREENING", treatment = "TREATMENT", followUp = "FOLLOW-UP"

    let elements: [Element]
    let armElement: [String: String]
    /// Each arm's path of arms, from the one allocated at enrolment.
    let paths: [String: [Step]]
    /// Arms a later stage moves participants out of.
    let stageSources: [String: StageRandomization]
    /// Arms a participant can end in: the planned arms (TS NARMS).
    let terminalArms: [Arm]

    init(study: StudyDefinition, blinded: Bool, window: Double) {
        let stages = study.randomizations ?? []
        var predecessor: [String: (source: String, stage: StageRandomization, option: String)] = [:]
        var sources: [String: StageRandomization] = [:]
        for stage in stages {
            for (source, options) in stage.assigns.sorted(by: { $0.key < $1.key }) {
                for (option, target) in options.sorted(by: { $0.key < $1.key }) where target != source {
                    if predecessor[target] == nil { predecessor[target] = (source, stage, option) }
                    sources[source] = stage
                }
            }
        }
        stageSources = sources
        terminalArms = study.arms.filter { sources[$0.code] == nil }
        var paths: [String: [Step]] = [:]
        for arm in study.arms {
            var steps = [Step(arm: arm, stage: nil, option: nil)]
            var seen: Set<String> = [arm.code]
            while let p = predecessor[steps[0].arm.code], !seen.contains(p.source), let source = study.arms.first(where: { $0.code == p.source }) {
                steps[0].stage = p.stage
                steps[0].option = p.option
                steps.insert(Step(arm: source, stage: nil, option: nil), at: 0)
                seen.insert(p.source)
            }
            paths[arm.code] = steps
        }
        self.paths = paths

        let hours = SDTMText.number(window / 3600)
        func endRule(_ arm: Arm?) -> String {
            let doses = arm?.doses ?? []
            if arm != nil, doses.isEmpty { return window > 0 ? "\(hours) h after allocation" : "Allocation" }
            let last = doses.last.map { " (\(SDTMText.ascii($0.name ?? $0.code)))" } ?? ""
            return window > 0 ? "\(hours) h after the last dose\(last)" : "The last dose\(last)"
        }
        let randomized = study.identity.allocation.uppercased() == "RANDOMIZED"
        var elements = [
            Element(
                code: "SCRN", name: "Screening", startRule: "Informed consent",
                endRule: "First dose of study treatment (\(randomized ? "randomization" : "allocation") in an arm without doses)"),
        ]
        var armElement: [String: String] = [:]
        if blinded {
            elements.append(
                Element(code: "BLINDED", name: "Blinded study treatment", startRule: "First dose of study treatment (allocation in an arm without doses)",
                        endRule: endRule(nil)))
        } else {
            var used: Set<String> = ["SCRN", "FU"]
            for (index, arm) in study.arms.enumerated() {
                let upper = arm.code.uppercased()
                let code: String
                if upper.count <= 8, upper.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }), !used.contains(upper) {
                    code = upper
                } else {
                    code = String(format: "TRT%02d", index + 1)
                }
                used.insert(code)
                armElement[arm.code] = code
                let name = SDTMText.ascii(arm.name)
                let step = paths[arm.code]?.last
                let start: String
                if let stage = step?.stage {
                    start = "\(SDTMText.ascii(stage.name ?? stage.code)) at \(Self.visitName(study, stage.visit)): \(step?.option ?? "")"
                } else if let first = arm.doses?.first {
                    start = "First dose of \(name) (\(SDTMText.ascii(first.name ?? first.code)))"
                } else {
                    start = "\(randomized ? "Randomization" : "Allocation") to \(name)"
                }
                var end = endRule(arm)
                if let stage = sources[arm.code] {
                    end = "\(SDTMText.ascii(stage.name ?? stage.code)) at \(Self.visitName(study, stage.visit)); without it, " + end.prefix(1).lowercased() + end.dropFirst()
                }
                elements.append(Element(code: code, name: name, startRule: start, endRule: end))
            }
        }
        let lastVisit = study.visits.last.map { SDTMText.ascii($0.name) } ?? "the last visit"
        elements.append(Element(code: "FU", name: "Follow-up", startRule: "End of the treatment element", endRule: "\(lastVisit) or end of participation"))
        self.elements = elements
        self.armElement = armElement
    }

    static func visitName(_ study: StudyDefinition, _ code: String) -> String {
        SDTMText.ascii(study.visit(code)?.name ?? code)
    }
}

// MARK: - Vital signs

/// Vital signs VS reads: a form field is one when its LOINC code is one of FHIR R4's vital-sign value set
/// (hl7.org/fhir/R4/valueset-observation-vitalsignresult.html). Units are UCUM as the definition writes them,
/// with their CDISC unit and the factor and offset to the standard unit.
struct SDTMVitalSignTest {
    struct Unit {
        let cdisc: String
        let scale: Double
        let shift: Double
    }

    let code: String
    let name: String
    let standardUnit: String
    let units: [String: Unit]

    static let byLOINC: [String: SDTMVitalSignTest] = [
        "8310-5": SDTMVitalSignTest(
            code: "TEMP", name: "Temperature", standardUnit: "C",
            units: ["Cel": Unit(cdisc: "C", scale: 1, shift: 0), "[degF]": Unit(cdisc: "F", scale: 5.0 / 9.0, shift: -160.0 / 9.0)]),
        "8867-4": SDTMVitalSignTest(code: "HR", name: "Heart Rate", standardUnit: "beats/min", units: ["/min": Unit(cdisc: "beats/min", scale: 1, shift: 0)]),
        "9279-1": SDTMVitalSignTest(code: "RESP", name: "Respiratory Rate", standardUnit: "breaths/min", units: ["/min": Unit(cdisc: "breaths/min", scale: 1, shift: 0)]),
        "8480-6": SDTMVitalSignTest(code: "SYSBP", name: "Systolic Blood Pressure", standardUnit: "mmHg", units: ["mm[Hg]": Unit(cdisc: "mmHg", scale: 1, shift: 0)]),
        "8462-4": SDTMVitalSignTest(code: "DIABP", name: "Diastolic Blood Pressure", standardUnit: "mmHg", units: ["mm[Hg]": Unit(cdisc: "mmHg", scale: 1, shift: 0)]),
        "2708-6": SDTMVitalSignTest(code: "OXYSAT", name: "Oxygen Saturation", standardUnit: "%", units: ["%": Unit(cdisc: "%", scale: 1, shift: 0)]),
        "29463-7": SDTMVitalSignTest(
            code: "WEIGHT", name: "Weight", standardUnit: "kg",
            units: ["kg": Unit(cdisc: "kg", scale: 1, shift: 0), "[lb_av]": Unit(cdisc: "LB", scale: 0.45359237, shift: 0)]),
        "8302-2": SDTMVitalSignTest(
            code: "HEIGHT", name: "Height", standardUnit: "cm",
            units: ["cm": Unit(cdisc: "cm", scale: 1, shift: 0), "m": Unit(cdisc: "m", scale: 100, shift: 0), "[in_i]": Unit(cdisc: "in", scale: 2.54, shift: 0)]),
        "39156-5": SDTMVitalSignTest(code: "BMI", name: "Body Mass Index", standardUnit: "kg/m2", units: ["kg/m2": Unit(cdisc: "kg/m2", scale: 1, shift: 0)]),
    ]
}

/// One vital-sign field of a form.
struct SDTMVitalSignField {
    let form: Form
    let field: Field
    let test: SDTMVitalSignTest
    let unit: SDTMVitalSignTest.Unit
}

// MARK: - Methods

enum SDTMMethods {
    static let usubjid = SDTMMethod(
        oid: "MT.USUBJID", name: "Unique subject identifier",
        description: "STUDYID, SITEID and SUBJID (the site's screening number) joined by hyphens; unique across sites, checked when written.")
    static let sequence = SDTMMethod(
        oid: "MT.SEQ", name: "Sequence number",
        description: "1, 2, ... within the subject, in the dataset's sort order (time, then the topic variable).")
    static let studyDay = SDTMMethod(
        oid: "MT.STUDYDAY", name: "Study day",
        description: "The date's site calendar day minus RFSTDTC's, plus 1 when on or after RFSTDTC; there is no day 0 (SDTMIG 3.3 section 4.4.4). Null without RFSTDTC.")
    static let epoch = SDTMMethod(
        oid: "MT.EPOCH", name: "Epoch",
        description: "SCREENING before RFSTDTC (or for a subject never allocated); TREATMENT from RFSTDTC until the later of the last dose plus the post-dose window of the primary endpoint and the arm's planned dosing span plus that window; FOLLOW-UP after. Without a date, the planned epoch of the visit from the definition's timeline.")
    static let referenceStart = SDTMMethod(
        oid: "MT.RFSTDTC", name: "Reference start",
        description: "The first dose given; for a subject allocated to an arm without doses, or allocated and not yet dosed, the allocation (the definition's first-dose anchor).")
    static let firstDose = SDTMMethod(oid: "MT.RFXSTDTC", name: "First exposure", description: "Start of the first dose given.")
    static let lastDose = SDTMMethod(oid: "MT.RFXENDTC", name: "Last exposure", description: "Start of the last dose given.")
    static let referenceEnd = SDTMMethod(
        oid: "MT.RFENDTC", name: "Reference end", description: "The date of the disposition event that ended the subject's participation; null while it goes on.")
    static let participationEnd = SDTMMethod(
        oid: "MT.RFPENDTC", name: "End of participation",
        description: "The ending disposition event's date; for a screen failure the eligibility decision; otherwise the last contact.")
    static let age = SDTMMethod(
        oid: "MT.AGE", name: "Age", description: "Completed years from BRTHDTC to RFSTDTC, or to informed consent when RFSTDTC is null.")
    static let death = SDTMMethod(oid: "MT.DTHFL", name: "Death flag", description: "Y when a date of death is recorded.")
    static let arm = SDTMMethod(
        oid: "MT.ARM", name: "Planned arm", description: "The arm of the subject's last allocation (after every randomization stage the definition names).")
    static let actualArm = SDTMMethod(
        oid: "MT.ACTARM", name: "Actual arm",
        description: "The planned arm once a dose has been given, or at allocation for an arm without doses; null with ARMNRS otherwise.")
    static let armNull = SDTMMethod(
        oid: "MT.ARMNRS", name: "Arm null reason",
        description: "SCREEN FAILURE for a screen failure, NOT ASSIGNED before allocation, ASSIGNED, NOT TREATED for an allocated subject with no dose given.")
    static let standardResult = SDTMMethod(
        oid: "MT.LBSTRESN", name: "Standard result",
        description: "The entered value converted to the test's canonical unit (the catalogue's factors, or the study's where its protocol states one).")
    static let originalRange = SDTMMethod(
        oid: "MT.LBORNR", name: "Range in original units",
        description: "The site's reference range in force on the day of sampling, converted from the canonical unit to the unit entered.")
    static let rangeIndicator = SDTMMethod(
        oid: "MT.LBNRIND", name: "Reference range indicator",
        description: "LOW below LBSTNRLO, HIGH above LBSTNRHI, NORMAL otherwise; null when the site gives no range for the test.")
    static let lastBeforeExposure = SDTMMethod(
        oid: "MT.LOBXFL", name: "Last observation before exposure",
        description: "Y on the last non-missing result of each test collected before RFXSTDTC.")
    static let vitalStandard = SDTMMethod(
        oid: "MT.VSSTRESN", name: "Vital sign in standard unit", description: "The recorded value converted to the test's CDISC standard unit.")
    static let criteria = SDTMMethod(
        oid: "MT.IE", name: "Criteria not met",
        description: "One record per criterion the investigator's eligibility decision found not met (inclusion) or met (exclusion).")
    static let disposition = SDTMMethod(
        oid: "MT.DS", name: "Disposition events",
        description: "Informed consent and each randomization as protocol milestones; screen failure and the end of participation as disposition events.")
    static let maskedTreatment = SDTMMethod(
        oid: "MT.ECTRT", name: "Masked treatment",
        description: "The planned dose's name when every arm with doses plans that dose under the same name, else MASKED TREATMENT; ECDOSE and ECDOSU only where every such arm plans the same amount and unit.")
    static let visitNumber = SDTMMethod(
        oid: "MT.VISITNUM", name: "Visit number", description: "The visit's position in the study definition's list of visits.")
}

// MARK: - The export

/// The SDTM datasets of one study: their metadata, and rows from each participant's records.
public struct SDTMExport: Sendable {
    /// The datasets an export can produce; `domains` lists those it does (EX or EC by blinding, VS only with
    /// vital-sign fields, TA only unblinded).
    public static let subjectDomains = ["DM", "DS", "IE", "EX", "EC", "AE", "LB", "VS", "SV"]
    public static let designDomains = ["TS", "TA", "TE", "TV", "TI"]
    /// SDTMIG 3.3 §5.2: ARMCD is limited to 20 characters.
    public static let armCodeLimit = 20

    public let study: StudyDefinition
    public let blinded: Bool
    public let options: SDTMOptions
    /// Exactly the datasets produced, in the order they are written and described.
    public let domains: [SDTMDomain]

    let studyID: String
    let timeline: SDTMTimeline
    let design: SDTMTrialDesign
    /// Post-dose observation window, seconds: the primary endpoint's window (`safety.primaryEndpointWindowHours`).
    let window: Double
    let plannedEpoch: [String: String]
    let visitNumber: [String: Double]
    let vitalFields: [SDTMVitalSignField]
    let vitalTimePoints: [String: (name: String, number: Int)]
    let designRowCache: [String: [[XPORTValue]]]

    public init(study: StudyDefinition, blinded: Bool = false, options: SDTMOptions = SDTMOptions()) throws {
        self.study = study
        self.blinded = blinded
        self.options = options
        let studyID = SDTMText.ascii(study.code)
        self.studyID = studyID
        for arm in study.arms where arm.code.count > Self.armCodeLimit { throw SDTMError.armCodeTooLong(arm: arm.code, limit: Self.armCodeLimit) }
        let timeline = SDTMTimeline(study)
        self.timeline = timeline
        let window = Double(study.safety.primaryEndpointWindowHours ?? 0) * 3600
        self.window = window
        let design = SDTMTrialDesign(study: study, blinded: blinded, window: window)
        self.design = design
        let visitNumber = Dictionary(uniqueKeysWithValues: study.visits.enumerated().map { ($1.code, Double($0 + 1)) })
        self.visitNumber = visitNumber
        plannedEpoch = Self.plannedEpochs(study: study, timeline: timeline, window: window)

        var vitals: [SDTMVitalSignField] = []
        for form in study.forms {
            for field in form.fields where field.type == .number || field.type == .integer {
                guard let loinc = field.loinc, let test = SDTMVitalSignTest.byLOINC[loinc] else { continue }
                guard let unit = test.units[field.unit ?? ""] else { throw SDTMError.vitalSignUnit(form: form.code, field: field.code, unit: field.unit ?? "") }
                vitals.append(SDTMVitalSignField(form: form, field: field, test: test, unit: unit))
            }
        }
        vitalFields = vitals
        // SDTMIG 3.3 §4.4 (planned time points): several vital-sign forms at one visit are its planned time points, in the definition's order.
        var timePoints: [String: (String, Int)] = [:]
        for visit in study.visits {
            let forms = study.forms.filter { f in f.visits.contains(visit.code) && vitals.contains { $0.form.code == f.code } }
            guard forms.count > 1 else { continue }
            for (index, form) in forms.enumerated() { timePoints["\(visit.code)|\(form.code)"] = (SDTMText.ascii(form.name), index + 1) }
        }
        let points = timePoints.mapValues { (name: $0.0, number: $0.1) }
        vitalTimePoints = points

        let parts = SDTMDatasets(study: study, blinded: blinded, studyID: studyID, design: design, vitals: vitals, timePoints: points)
        let rows = parts.designRows(options: options, timeline: timeline, visitNumber: visitNumber)
        designRowCache = rows
        domains = parts.domains(designRows: rows)
    }

    public func domain(_ name: String) -> SDTMDomain? { domains.first { $0.name == name } }

    /// The rows of a trial design dataset (TS, TA, TE, TV, TI), from the definition.
    public func designRows(_ name: String) throws -> [[XPORTValue]] {
        guard domain(name) != nil else { throw SDTMError.unknownDomain(name) }
        guard let rows = designRowCache[name] else { throw SDTMError.notSubjectDomain(name) }
        return rows
    }

    /// One participant's rows of a subject-level dataset, in SDTM variable order and sorted, with --SEQ from 1.
    public func rows(_ name: String, for data: SDTMSubjectData) throws -> [[XPORTValue]] {
        guard let domain = domain(name) else { throw SDTMError.unknownDomain(name) }
        guard designRowCache[name] == nil else { throw SDTMError.notSubjectDomain(name) }
        let subject = try SDTMSubjectContext(export: self, subject: data.subject)
        let rows: [[String: XPORTValue]]
        switch name {
        case "DM": rows = [try dm(subject)]
        case "DS": rows = try ds(subject)
        case "IE": rows = try ie(subject)
        case "EX": rows = try ex(subject, try own(data.doses, \.participantID, name, subject))
        case "EC": rows = try ec(subject, try own(data.doses, \.participantID, name, subject))
        case "AE": rows = try ae(subject, try own(data.adverseEvents, \.participantID, name, subject))
        case "LB": rows = try lb(subject, try own(data.labs, \.participantID, name, subject))
        case "VS": rows = try vs(subject, try own(data.forms, \.participantID, name, subject), try own(data.visits, \.participantID, name, subject))
        case "SV": rows = try sv(subject, try own(data.visits, \.participantID, name, subject))
        default: throw SDTMError.unknownDomain(name)
        }
        // A value under a name the dataset does not declare would be lost without a word: caught in debug builds.
        assert(rows.allSatisfy { Set($0.keys).isSubset(of: domain.variables.map(\.name)) }, "\(name): a row names a variable the dataset lacks")
        return rows.map { row in domain.variables.map { row[$0.name] ?? ($0.type.isNumeric ? .missing(.standard) : .text("")) } }
    }

    /// Rows of one dataset as the XPORT writer reads them: a trial design dataset from the definition, a subject-level
    /// one from `subjects`, checking for DM that no two participants share a USUBJID.
    public func rowSource(_ name: String, subjects: @escaping SDTMSubjectSource) -> XPORTRowSource {
        { emit in try self.stream(name, subjects: subjects, emit: emit) }
    }

    /// Writes every dataset as `<name>.xpt` into `directory`; returns the datasets as written (with the character
    /// lengths the files declare), ready for `DefineXML.document`. `subjects` is read once per subject-level dataset.
    @discardableResult
    public func write(to directory: URL, subjects: SDTMSubjectSource, header: XPORTHeader = XPORTHeader(), lengths: XPORTLengthPolicy = .declared) throws
        -> [SDTMDomain]
    {
        var written: [SDTMDomain] = []
        for domain in domains {
            var variables = domain.xportVariables
            if lengths == .fitToData {
                variables = try XPORT.fitLengths(dataset: domain.dataset, variables: variables) { emit in try stream(domain.name, subjects: subjects, emit: emit) }
            }
            try XPORT.write(to: directory.appendingPathComponent(domain.fileName), dataset: domain.dataset, variables: variables, header: header) { emit in
                try stream(domain.name, subjects: subjects, emit: emit)
            }
            written.append(domain.fitted(to: variables))
        }
        return written
    }

    private func stream(_ name: String, subjects: SDTMSubjectSource, emit: ([XPORTValue]) throws -> Void) throws {
        if let rows = designRowCache[name] {
            guard domain(name) != nil else { throw SDTMError.unknownDomain(name) }
            for row in rows { try emit(row) }
            return
        }
        var seen: Set<String> = []
        // The participants' source and the writer's sink are both non-escaping: one only calls the other.
        try withoutActuallyEscaping(emit) { emit in
            try subjects { data in
                if name == "DM" {
                    let usubjid = try SDTMSubjectContext(export: self, subject: data.subject).usubjid
                    guard seen.insert(usubjid).inserted else { throw SDTMError.duplicateSubject(usubjid) }
                }
                for row in try rows(name, for: data) { try emit(row) }
            }
        }
    }

    private func own<T>(_ records: [T], _ participant: KeyPath<T, String>, _ domain: String, _ subject: SDTMSubjectContext) throws -> [T] {
        for record in records where record[keyPath: participant] != subject.subject.participantID {
            throw SDTMError.foreignRecord(domain: domain, subject: subject.subject.participantID, participant: record[keyPath: participant])
        }
        return records
    }

    /// Each visit's planned epoch: before the first planned dose (or at it, for a visit that is not a dosing one)
    /// SCREENING; to the last planned dose plus the post-dose window TREATMENT; after it FOLLOW-UP.
    static func plannedEpochs(study: StudyDefinition, timeline: SDTMTimeline, window: Double) -> [String: String] {
        let doseOffsets = study.arms.flatMap { $0.doses ?? [] }.compactMap { timeline.anchors[$0.code] }
        guard let start = doseOffsets.min() ?? timeline.anchors[SDTMTimeline.allocationNode] else { return [:] }
        let end = (doseOffsets.max() ?? start) + window
        let doseVisits = Set(study.arms.flatMap { $0.doses ?? [] }.compactMap(\.visit))
        let treatmentAnchors = Set(study.anchors.filter { a in
            guard let s = a.source else { return false }
            return s == "first_dose" || s == "infusion" || s.hasPrefix("dose:")
        }.map(\.code))
        var epochs: [String: String] = [:]
        for visit in study.visits {
            guard let at = timeline.visits[visit.code] else { continue }
            let dosing = doseVisits.contains(visit.code) || visit.defines.map(treatmentAnchors.contains) == true
            if at < start || (at == start && !dosing) {
                epochs[visit.code] = SDTMTrialDesign.screening
            } else if at <= end {
                epochs[visit.code] = SDTMTrialDesign.treatment
            } else {
                epochs[visit.code] = SDTMTrialDesign.followUp
            }
        }
        return epochs
    }
}

// MARK: - One participant

/// What every dataset needs of a participant: USUBJID, the site's time zone, reference start and the epochs.
struct SDTMSubjectContext {
    let subject: SDTMSubject
    let zone: TimeZone
    let usubjid: String
    let arm: Arm?
    /// RFSTDTC.
    let reference: SDTMLocalTime?
    /// The end of the treatment epoch.
    let treatmentEnd: SDTMLocalTime?
    let plannedEpoch: [String: String]

    init(export: SDTMExport, subject: SDTMSubject) throws {
        let study = export.study
        guard study.sites.contains(where: { $0.code == subject.site }) else {
            throw SDTMError.unknownSite(subject: subject.participantID, site: subject.site)
        }
        self.subject = subject
        zone = SiteCalendar(study: study, site: subject.site).zone
        usubjid = [export.studyID, SDTMText.ascii(subject.site), SDTMText.ascii(subject.screeningNumber)].joined(separator: "-")
        plannedEpoch = export.plannedEpoch
        for allocation in subject.allocations where study.arms.first(where: { $0.code == allocation.arm }) == nil {
            throw SDTMError.unknownArm(subject: subject.participantID, arm: allocation.arm)
        }
        arm = subject.arm.flatMap { code in study.arms.first { $0.code == code } }
        guard let allocatedAt = subject.allocations.first?.at else {
            reference = nil
            treatmentEnd = nil
            return
        }
        let start = subject.firstDoseAt ?? allocatedAt
        reference = SDTMLocalTime.of(start, in: zone)
        let doses = arm?.doses ?? []
        let offsets = doses.compactMap { export.timeline.anchors[$0.code] }
        let span = (offsets.max() ?? 0) - (offsets.min() ?? 0)
        let planned = start.addingTimeInterval(span + export.window)
        let actual = (subject.lastDoseAt ?? start).addingTimeInterval(export.window)
        treatmentEnd = SDTMLocalTime.of(max(planned, actual), in: zone)
    }

    func time(_ date: Date?) -> SDTMLocalTime? { date.map { SDTMLocalTime.of($0, in: zone) } }

    func time(_ value: SDTMDate?, domain: String) throws -> SDTMLocalTime? {
        guard let value else { return nil }
        guard let time = SDTMLocalTime.of(value, in: zone) else {
            if case .day(let text) = value { throw SDTMError.invalidDate(domain: domain, subject: subject.participantID, value: text) }
            return nil
        }
        return time
    }

    /// SDTMIG 3.3 §7.1 and §5.3 (SE): the epoch the subject was in at `time`; the visit's planned epoch when there is no time.
    func epoch(_ time: SDTMLocalTime?, visit: String? = nil) -> String? {
        guard let time else { return visit.flatMap { plannedEpoch[$0] } }
        guard let reference, let treatmentEnd else { return SDTMTrialDesign.screening }
        if time.isBefore(reference) { return SDTMTrialDesign.screening }
        return time.isNotAfter(treatmentEnd) ? SDTMTrialDesign.treatment : SDTMTrialDesign.followUp
    }

    func day(_ time: SDTMLocalTime?) -> XPORTValue { .numeric(sdtmStudyDay(time, from: reference)) }
}

// MARK: - Row helpers

private func text(_ value: String?) -> XPORTValue { .character(value.map(SDTMText.ascii)) }
private func number(_ value: Double?) -> XPORTValue { .numeric(value) }
private func yesNo(_ value: Bool) -> XPORTValue { .text(value ? "Y" : "N") }

extension SDTMExport {
    func base(_ domain: String, _ subject: SDTMSubjectContext) -> [String: XPORTValue] {
        ["STUDYID": .text(studyID), "DOMAIN": .text(domain), "USUBJID": .text(subject.usubjid)]
    }

    func visit(_ code: String?, domain: String, subject: SDTMSubjectContext) throws -> [String: XPORTValue] {
        guard let code else { return ["VISITNUM": .missing(.standard), "VISIT": .text("")] }
        guard let number = visitNumber[code], let visit = study.visit(code) else {
            throw SDTMError.unknownVisit(domain: domain, subject: subject.subject.participantID, visit: code)
        }
        return ["VISITNUM": .number(number), "VISIT": text(visit.name)]
    }

    /// Sorted rows with --SEQ numbered from 1.
    func sequenced(_ rows: [(key: [String], row: [String: XPORTValue])], _ variable: String) -> [[String: XPORTValue]] {
        rows.sorted { $0.key.lexicographicallyPrecedes($1.key) }.enumerated().map { index, entry in
            var row = entry.row
            row[variable] = .number(Double(index + 1))
            return row
        }
    }

    func armName(_ code: String) -> String? { study.arms.first { $0.code == code }?.name }

    // MARK: DM (SDTMIG 3.3 §5.2)

    func dm(_ s: SDTMSubjectContext) throws -> [String: XPORTValue] {
        let subject = s.subject
        var row = base("DM", s)
        row["SUBJID"] = text(subject.screeningNumber)
        row["RFSTDTC"] = text(s.reference?.iso)
        let end = try s.time(subject.disposition?.date, domain: "DM")
        row["RFENDTC"] = text(end?.iso)
        row["RFXSTDTC"] = text(s.time(subject.firstDoseAt)?.iso)
        row["RFXENDTC"] = text(s.time(subject.lastDoseAt)?.iso)
        row["RFICDTC"] = text(s.time(subject.consentedAt)?.iso)
        let screenFailed = subject.status == .screenFailed
        let participationEnd = try end ?? (screenFailed ? s.time(subject.eligibility?.decidedAt) : s.time(subject.lastContact, domain: "DM"))
        row["RFPENDTC"] = text(participationEnd?.iso)
        let death = try s.time(subject.deathDate, domain: "DM")
        row["DTHDTC"] = text(death?.iso)
        row["DTHFL"] = text(death == nil ? nil : "Y")
        row["SITEID"] = text(subject.site)
        var age: Double?
        if let birth = subject.birthDate {
            guard let born = SDTMLocalTime.of(day: birth) else { throw SDTMError.invalidDate(domain: "DM", subject: subject.participantID, value: birth) }
            row["BRTHDTC"] = .text(born.iso)
            if let at = s.reference ?? s.time(subject.consentedAt) { age = Double(Evaluator.completedYears(born: born.utcDay, on: at.utcDay)) }
        }
        row["AGE"] = number(age)
        row["AGEU"] = text(age == nil ? nil : "YEARS")
        row["SEX"] = text(sex(subject.sex))
        if !blinded {
            let dosed = s.arm.map { ($0.doses ?? []).isEmpty || subject.firstDoseAt != nil } ?? false
            row["ARMCD"] = text(s.arm?.code.uppercased())
            row["ARM"] = text(s.arm?.name)
            row["ACTARMCD"] = text(dosed ? s.arm?.code.uppercased() : nil)
            row["ACTARM"] = text(dosed ? s.arm?.name : nil)
            let reason: String? =
                s.arm == nil ? (screenFailed ? "SCREEN FAILURE" : "NOT ASSIGNED") : (dosed ? nil : "ASSIGNED, NOT TREATED")
            row["ARMNRS"] = text(reason)
        }
        return row
    }

    /// SDTMIG 3.3 §5.2: SEX is M, F, U or UNDIFFERENTIATED; the definition's female code is F.
    func sex(_ code: String?) -> String? {
        guard let code else { return nil }
        let upper = code.uppercased()
        if ["F", "M", "U", "UNDIFFERENTIATED"].contains(upper) { return upper }
        return code == study.participant?.female ? "F" : "U"
    }

    // MARK: DS (SDTMIG 3.3 §6.2.3)

    func ds(_ s: SDTMSubjectContext) throws -> [[String: XPORTValue]] {
        let subject = s.subject
        // SDTMIG 3.3 §7.2.1: the randomization at enrolment ends the screening element, even where it is also time zero.
        var events: [(time: SDTMLocalTime?, term: String, decod: String, cat: String, epoch: String?)] = []
        if let consent = s.time(subject.consentedAt) {
            events.append((consent, "INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", nil))
        }
        if study.identity.allocation.uppercased() == "RANDOMIZED" {
            for (index, allocation) in subject.allocations.enumerated() {
                let stage = allocation.stage.flatMap { code in (study.randomizations ?? []).first { $0.code == code } }
                let stageText = stage.map { " (\(SDTMText.ascii($0.name ?? $0.code)))" } ?? allocation.stage.map { " (\($0))" } ?? ""
                let term = blinded ? "RANDOMIZED\(stageText)" : "RANDOMIZED TO \(SDTMText.ascii(armName(allocation.arm) ?? allocation.arm))\(stageText)"
                events.append((s.time(allocation.at), term, "RANDOMIZED", "PROTOCOL MILESTONE", index == 0 ? SDTMTrialDesign.screening : nil))
            }
        }
        if subject.status == .screenFailed {
            events.append((s.time(subject.eligibility?.decidedAt), "SCREEN FAILURE", "SCREEN FAILURE", "DISPOSITION EVENT", nil))
        }
        if let disposition = subject.disposition {
            let time = try s.time(disposition.date, domain: "DS")
            events.append((time, disposition.term ?? disposition.reason.rawValue, disposition.reason.rawValue, "DISPOSITION EVENT", nil))
        }
        return sequenced(events.enumerated().map { index, e in
            var row = base("DS", s)
            row["DSTERM"] = text(e.term)
            row["DSDECOD"] = .text(e.decod)
            row["DSCAT"] = .text(e.cat)
            row["EPOCH"] = text(e.epoch ?? s.epoch(e.time))
            row["DSSTDTC"] = text(e.time?.iso)
            row["DSSTDY"] = s.day(e.time)
            return ([e.time.map { String(format: "%08d", $0.day + 1_000_000) } ?? "~", e.time?.iso ?? "", String(format: "%04d", index)], row)
        }, "DSSEQ")
    }

    // MARK: IE (SDTMIG 3.3 §6.3.4)

    func ie(_ s: SDTMSubjectContext) throws -> [[String: XPORTValue]] {
        guard let eligibility = s.subject.eligibility else { return [] }
        let decided = s.time(eligibility.decidedAt)
        var rows: [(key: [String], row: [String: XPORTValue])] = []
        for code in eligibility.failedCriteria {
            guard let found = criterion(code) else { throw SDTMError.unknownCriterion(subject: s.subject.participantID, criterion: code) }
            let (testcd, criterion, inclusion) = found
            var row = base("IE", s)
            row["IETESTCD"] = .text(testcd)
            row["IETEST"] = text(criterion.text)
            row["IECAT"] = .text(inclusion ? "INCLUSION" : "EXCLUSION")
            // SDTMIG 3.3 §6.3.4: an inclusion criterion not met is N, an exclusion criterion met is Y.
            row["IEORRES"] = .text(inclusion ? "N" : "Y")
            row["IESTRESC"] = .text(inclusion ? "N" : "Y")
            for (k, v) in try visit(study.eligibilityVisit, domain: "IE", subject: s) { row[k] = v }
            row["EPOCH"] = text(SDTMTrialDesign.screening)
            row["IEDTC"] = text(decided?.iso)
            row["IEDY"] = s.day(decided)
            rows.append(([testcd], row))
        }
        return sequenced(rows, "IESEQ")
    }

    /// IETESTCD by position: INCL01… and EXCL01…, as TI lists them.
    func criterion(_ code: String) -> (String, Criterion, Bool)? {
        if let i = study.eligibility.inclusion.firstIndex(where: { $0.code == code }) {
            return (String(format: "INCL%02d", i + 1), study.eligibility.inclusion[i], true)
        }
        if let i = study.eligibility.exclusion.firstIndex(where: { $0.code == code }) {
            return (String(format: "EXCL%02d", i + 1), study.eligibility.exclusion[i], false)
        }
        return nil
    }

    // MARK: EX and EC (SDTMIG 3.3 §6.1.3, §6.1.4)

    /// The planned dose a record names, looked up in the arms the participant was allocated, the latest first.
    func planned(_ dose: String, _ s: SDTMSubjectContext) throws -> PlannedDose {
        for allocation in s.subject.allocations.reversed() {
            if let found = study.arms.first(where: { $0.code == allocation.arm })?.doses?.first(where: { $0.code == dose }) { return found }
        }
        throw SDTMError.unknownDose(subject: s.subject.participantID, dose: dose)
    }

    func treatmentName(_ planned: PlannedDose) -> String {
        SDTMText.ascii(study.interventions.first { $0.code == planned.product }?.name ?? planned.product)
    }

    /// CDISC route terms for the definition's routes, which are words ("peripheral intravenous").
    static func route(_ text: String?) -> String? {
        guard let text else { return nil }
        let lower = text.lowercased()
        let known = [("intra-arterial", "INTRA-ARTERIAL"), ("intraarterial", "INTRA-ARTERIAL"), ("intravenous", "INTRAVENOUS"), ("subcutaneous", "SUBCUTANEOUS"),
                     ("intramuscular", "INTRAMUSCULAR"), ("transdermal", "TRANSDERMAL"), ("topical", "TOPICAL"), ("nasal", "NASAL"), ("oral", "ORAL")]
        return known.first { lower.contains($0.0) }?.1 ?? SDTMText.ascii(text).uppercased()
    }

    func ex(_ s: SDTMSubjectContext, _ doses: [SDTMDose]) throws -> [[String: XPORTValue]] {
        var rows: [(key: [String], row: [String: XPORTValue])] = []
        for dose in doses where dose.given {
            let plan = try planned(dose.dose, s)
            let start = s.time(dose.startedAt), end = s.time(dose.endedAt ?? dose.startedAt)
            var row = base("EX", s)
            row["EXTRT"] = .text(treatmentName(plan))
            row["EXDOSE"] = number(dose.amount ?? plan.amount)
            row["EXDOSU"] = text(dose.unit ?? plan.unit)
            row["EXDOSFRQ"] = .text("ONCE")
            row["EXROUTE"] = text(Self.route(plan.route))
            row["EXLOT"] = text(dose.lot)
            for (k, v) in try visit(plan.visit, domain: "EX", subject: s) { row[k] = v }
            row["EPOCH"] = text(s.epoch(start, visit: plan.visit))
            row["EXSTDTC"] = text(start?.iso)
            row["EXENDTC"] = text(end?.iso)
            row["EXSTDY"] = s.day(start)
            row["EXENDY"] = s.day(end)
            rows.append(([start?.iso ?? "~", dose.dose], row))
        }
        return sequenced(rows, "EXSEQ")
    }

    func ec(_ s: SDTMSubjectContext, _ doses: [SDTMDose]) throws -> [[String: XPORTValue]] {
        var rows: [(key: [String], row: [String: XPORTValue])] = []
        for dose in doses {
            let plan = try planned(dose.dose, s)
            let shown = SDTMMasking(study: study).dose(dose.dose)
            let start = dose.given ? s.time(dose.startedAt) : nil
            let end = dose.given ? s.time(dose.endedAt ?? dose.startedAt) : nil
            var row = base("EC", s)
            row["ECTRT"] = .text(shown.name)
            row["ECMOOD"] = .text("PERFORMED")
            row["ECPRESP"] = .text("Y")
            // SDTMIG 3.3 §6.1.3: a planned dose not given is ECOCCUR N, never a zero dose.
            row["ECOCCUR"] = yesNo(dose.given)
            row["ECREASOC"] = text(dose.given ? nil : dose.skipReason)
            row["ECDOSE"] = number(dose.given ? (shown.amount == nil ? nil : dose.amount ?? shown.amount) : nil)
            row["ECDOSU"] = text(dose.given ? (shown.amount == nil ? nil : dose.unit ?? shown.unit) : nil)
            row["ECROUTE"] = text(Self.route(plan.route))
            for (k, v) in try visit(plan.visit, domain: "EC", subject: s) { row[k] = v }
            row["EPOCH"] = text(s.epoch(start, visit: plan.visit))
            row["ECSTDTC"] = text(start?.iso)
            row["ECENDTC"] = text(end?.iso)
            row["ECSTDY"] = s.day(start)
            row["ECENDY"] = s.day(end)
            let order = plan.visit.flatMap { visitNumber[$0] }.map { String(format: "%06.0f", $0) } ?? "~"
            rows.append(([order, start?.iso ?? "~", dose.dose], row))
        }
        return sequenced(rows, "ECSEQ")
    }

    // MARK: AE (SDTMIG 3.3 §6.2.1)

    static func relation(_ attribution: Attribution) -> String {
        switch attribution {
        case .unrelated: "NOT RELATED"
        case .unlikely: "UNLIKELY RELATED"
        case .possible: "POSSIBLY RELATED"
        case .probable: "PROBABLY RELATED"
        case .definite: "RELATED"
        }
    }

    func ae(_ s: SDTMSubjectContext, _ events: [SDTMAdverseEvent]) throws -> [[String: XPORTValue]] {
        sequenced(events.map { event in
            let start = s.time(event.onset), end = s.time(event.resolved)
            var row = base("AE", s)
            row["AETERM"] = text(event.term)
            // A CTCAE term is a MedDRA lowest level term; the preferred term and the hierarchy need MedDRA itself.
            row["AELLT"] = text(event.term)
            row["AELLTCD"] = text(event.meddra)
            row["AEDECOD"] = text(event.term)
            row["AEBODSYS"] = text(event.soc)
            row["AESOC"] = text(event.soc)
            row["AESER"] = yesNo(event.serious)
            row["AEACN"] = .text(event.action.rawValue)
            row["AEREL"] = .text(Self.relation(event.attribution))
            row["AEOUT"] = .text(event.outcome.rawValue)
            // SDTMIG 3.3 §6.2.1: the seriousness criteria are given for serious events.
            let flags: [(String, Seriousness)] = [
                ("AESCONG", .congenitalAnomaly), ("AESDISAB", .disability), ("AESDTH", .death), ("AESHOSP", .hospitalization), ("AESLIFE", .lifeThreatening),
                ("AESMIE", .importantMedicalEvent),
            ]
            for (variable, criterion) in flags { row[variable] = event.serious ? yesNo(event.seriousness.contains(criterion)) : .text("") }
            row["AETOXGR"] = .text(String(event.grade))
            row["EPOCH"] = text(s.epoch(start))
            row["AESTDTC"] = text(start?.iso)
            row["AEENDTC"] = text(end?.iso)
            row["AESTDY"] = s.day(start)
            row["AEENDY"] = s.day(end)
            return ([start?.iso ?? "~", SDTMText.ascii(event.term)], row)
        }, "AESEQ")
    }

    // MARK: LB (SDTMIG 3.3 §6.3, Laboratory Test Results)

    func lb(_ s: SDTMSubjectContext, _ labs: [SDTMLab]) throws -> [[String: XPORTValue]] {
        let conversions = UnitConversions(study: study)
        // SDTMIG 3.3 §6.3 (LB, --LOBXFL): the last result of each test before the first exposure.
        var lastBefore: [String: (Date, Int)] = [:]
        if let first = s.subject.firstDoseAt {
            for (index, lab) in labs.enumerated() where lab.collectedAt < first {
                if let known = lastBefore[lab.test.uppercased()], known.0 >= lab.collectedAt { continue }
                lastBefore[lab.test.uppercased()] = (lab.collectedAt, index)
            }
        }
        var rows: [(key: [String], row: [String: XPORTValue])] = []
        for (index, lab) in labs.enumerated() {
            guard let test = study.labTest(lab.test) else { throw SDTMError.unknownLabTest(subject: s.subject.participantID, test: lab.test) }
            let at = s.time(lab.collectedAt)
            var row = base("LB", s)
            row["LBTESTCD"] = .text(test.code)
            row["LBTEST"] = text(test.name)
            row["LBORRES"] = .text(SDTMText.number(lab.value))
            row["LBORRESU"] = text(lab.unit)
            let factor = conversions.factor(from: lab.standardUnit, to: lab.unit, analyte: test.analyte)
                ?? (lab.standardValue != 0 ? lab.value / lab.standardValue : nil)
            row["LBORNRLO"] = text(both(lab.lowerLimit, factor).map { SDTMText.number($0 * $1) })
            row["LBORNRHI"] = text(both(lab.upperLimit, factor).map { SDTMText.number($0 * $1) })
            row["LBSTRESC"] = .text(SDTMText.number(lab.standardValue))
            row["LBSTRESN"] = .number(lab.standardValue)
            row["LBSTRESU"] = text(lab.standardUnit)
            row["LBSTNRLO"] = number(lab.lowerLimit)
            row["LBSTNRHI"] = number(lab.upperLimit)
            row["LBNRIND"] = text(Self.rangeIndicator(lab.standardValue, low: lab.lowerLimit, high: lab.upperLimit))
            row["LBLOINC"] = text(test.loinc)
            row["LBLOBXFL"] = text(lastBefore[test.code]?.1 == index ? "Y" : nil)
            row["LBTOXGR"] = text(lab.grade.map(String.init))
            for (k, v) in try visit(lab.visit, domain: "LB", subject: s) { row[k] = v }
            row["EPOCH"] = text(s.epoch(at, visit: lab.visit))
            row["LBDTC"] = .text(at.map(\.iso) ?? "")
            row["LBDY"] = s.day(at)
            rows.append(([at?.iso ?? "~", test.code], row))
        }
        return sequenced(rows, "LBSEQ")
    }

    /// SDTMIG 3.3 LBNRIND: where the standard result lies against the standard range.
    static func rangeIndicator(_ value: Double, low: Double?, high: Double?) -> String? {
        if let low, value < low { return "LOW" }
        if let high, value > high { return "HIGH" }
        return low == nil && high == nil ? nil : "NORMAL"
    }

    // MARK: VS (SDTMIG 3.3 §6.3, Vital Signs)

    func vs(_ s: SDTMSubjectContext, _ forms: [SDTMFormRecord], _ visits: [SDTMVisitRecord]) throws -> [[String: XPORTValue]] {
        var rows: [(key: [String], row: [String: XPORTValue], test: String, time: SDTMLocalTime?)] = []
        for record in forms {
            let fields = vitalFields.filter { $0.form.code == record.form }
            guard !fields.isEmpty else { continue }
            guard let form = fields.first?.form else { continue }
            // The form's own date and time, else the visit's start.
            var when: SDTMLocalTime?
            if let field = form.fields.first(where: { $0.type == .datetime }), let raw = record.values[field.code], let instant = DateParsing.instant(raw) {
                when = s.time(instant)
            } else if let field = form.fields.first(where: { $0.type == .date }), let raw = record.values[field.code] {
                when = SDTMLocalTime.of(day: raw)
            } else if let visitRecord = visits.first(where: { $0.visit == record.visit }) {
                when = try s.time(visitRecord.start, domain: "VS")
            }
            let point = vitalTimePoints["\(record.visit)|\(record.form)"]
            for vital in fields {
                guard let raw = record.values[vital.field.code]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { continue }
                let value = Double(raw)
                var row = base("VS", s)
                row["VSTESTCD"] = .text(vital.test.code)
                row["VSTEST"] = .text(vital.test.name)
                row["VSORRES"] = text(raw)
                row["VSORRESU"] = .text(vital.unit.cdisc)
                let standard = value.map { $0 * vital.unit.scale + vital.unit.shift }
                row["VSSTRESC"] = text(standard.map(SDTMText.number) ?? raw)
                row["VSSTRESN"] = number(standard)
                row["VSSTRESU"] = .text(vital.test.standardUnit)
                for (k, v) in try visit(record.visit, domain: "VS", subject: s) { row[k] = v }
                row["EPOCH"] = text(s.epoch(when, visit: record.visit))
                row["VSDTC"] = text(when?.iso)
                row["VSDY"] = s.day(when)
                row["VSTPT"] = text(point?.name)
                row["VSTPTNUM"] = number(point.map { Double($0.number) })
                let order = visitNumber[record.visit].map { String(format: "%06.0f", $0) } ?? "~"
                rows.append(([when?.iso ?? "~", order, String(format: "%03d", point?.number ?? 0), vital.test.code], row, vital.test.code, when))
            }
        }
        // --LOBXFL: the last result of each test before the first exposure.
        if let first = s.time(s.subject.firstDoseAt) {
            var last: [String: Int] = [:]
            for (index, r) in rows.enumerated() {
                guard let time = r.time, time.isBefore(first) else { continue }
                if let known = last[r.test], let knownTime = rows[known].time, !knownTime.isBefore(time) { continue }
                last[r.test] = index
            }
            for (_, index) in last { rows[index].row["VSLOBXFL"] = .text("Y") }
        }
        return sequenced(rows.map { ($0.key, $0.row) }, "VSSEQ")
    }

    // MARK: SV (SDTMIG 3.3 §5.4)

    func sv(_ s: SDTMSubjectContext, _ visits: [SDTMVisitRecord]) throws -> [[String: XPORTValue]] {
        var rows: [(key: [String], row: [String: XPORTValue])] = []
        for record in visits {
            let start = try s.time(record.start, domain: "SV"), end = try s.time(record.end ?? record.start, domain: "SV")
            var row = base("SV", s)
            for (k, v) in try visit(record.visit, domain: "SV", subject: s) { row[k] = v }
            row["SVSTDTC"] = text(start?.iso)
            row["SVENDTC"] = text(end?.iso)
            row["SVSTDY"] = s.day(start)
            row["SVENDY"] = s.day(end)
            rows.append(([String(format: "%06.0f", visitNumber[record.visit] ?? 0), start?.iso ?? "~"], row))
        }
        return rows.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.row)
    }
}

private func both(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b else { return nil }
    return (a, b)
}

// MARK: - Dataset metadata and trial design rows

/// Builds the variables of every dataset and the rows of the trial design ones, from the definition.
struct SDTMDatasets {
    let study: StudyDefinition
    let blinded: Bool
    let studyID: String
    let design: SDTMTrialDesign
    let vitals: [SDTMVitalSignField]
    let timePoints: [String: (name: String, number: Int)]

    init(study: StudyDefinition, blinded: Bool, studyID: String, design: SDTMTrialDesign, vitals: [SDTMVitalSignField], timePoints: [String: (name: String, number: Int)]) {
        self.study = study
        self.blinded = blinded
        self.studyID = studyID
        self.design = design
        self.vitals = vitals
        self.timePoints = timePoints
    }

    static let dtcLength = 19
    static let free = 200

    // MARK: Variable builders

    func char(
        _ name: String, _ label: String, _ length: Int, _ role: SDTMRole, _ core: SDTMCore, _ origin: SDTMOriginType, method: SDTMMethod? = nil,
        codeList: SDTMCodeList? = nil, comment: String? = nil, type: SDTMDataType = .text, valueList: [SDTMValueListItem] = []
    ) -> SDTMVariable {
        // Transport files hold 1 to 200 bytes; a longer value than declared fails when written, naming the record.
        SDTMVariable(
            name: name, label: label, type: type, length: min(max(length, 1), 200), role: role, core: core, origin: origin, method: method, codeList: codeList,
            comment: comment, valueList: valueList)
    }

    func num(
        _ name: String, _ label: String, _ role: SDTMRole, _ core: SDTMCore, _ origin: SDTMOriginType, type: SDTMDataType = .integer, method: SDTMMethod? = nil,
        codeList: SDTMCodeList? = nil, comment: String? = nil, digits: Int? = nil
    ) -> SDTMVariable {
        SDTMVariable(name: name, label: label, type: type, length: 8, role: role, core: core, origin: origin, method: method, codeList: codeList, comment: comment, significantDigits: digits)
    }

    func longest(_ values: [String], atLeast minimum: Int = 1) -> Int {
        values.map { SDTMText.ascii($0).utf8.count }.reduce(minimum, max)
    }

    var usubjidLength: Int { studyID.utf8.count + 1 + longest(study.sites.map(\.code)) + 1 + 32 }
    var visitLength: Int { longest(study.visits.map(\.name)) }

    func identifiers(_ domain: String, seq: Bool = true) -> [SDTMVariable] {
        var v = [
            char("STUDYID", "Study Identifier", studyID.utf8.count, .identifier, .required, .assigned),
            char("DOMAIN", "Domain Abbreviation", 2, .identifier, .required, .assigned, codeList: domainList(domain)),
            char("USUBJID", "Unique Subject Identifier", usubjidLength, .identifier, .required, .derived, method: SDTMMethods.usubjid),
        ]
        if seq { v.append(num("\(domain)SEQ", "Sequence Number", .identifier, .required, .derived, method: SDTMMethods.sequence)) }
        return v
    }

    func domainList(_ domain: String) -> SDTMCodeList {
        SDTMCodeList(oid: "CL.DOMAIN.\(domain)", name: "Domain Abbreviation (\(domain))", terms: [SDTMTerm(domain)], nci: "C66734", isStandard: true)
    }

    var ny: SDTMCodeList { CDISCTerminology.codeList("NY", name: "No Yes Response", terms: ["N", "Y"]) }
    var epochList: SDTMCodeList {
        CDISCTerminology.codeList("EPOCH", name: "Epoch", terms: [SDTMTrialDesign.screening, SDTMTrialDesign.treatment, SDTMTrialDesign.followUp])
    }

    func epoch() -> SDTMVariable { char("EPOCH", "Epoch", 9, .timing, .permissible, .derived, method: SDTMMethods.epoch, codeList: epochList) }

    func visitVariables(core: SDTMCore = .expected) -> [SDTMVariable] {
        [
            num("VISITNUM", "Visit Number", .timing, core, .derived, method: SDTMMethods.visitNumber, codeList: visitList),
            char("VISIT", "Visit Name", visitLength, .timing, .permissible, .assigned),
        ]
    }

    var visitList: SDTMCodeList {
        SDTMCodeList(
            oid: "CL.VISITNUM", name: "Visit Number", dataType: .integer,
            terms: study.visits.enumerated().map { SDTMTerm(String($0 + 1), decode: SDTMText.ascii($1.name)) }, isStandard: false)
    }

    func dtc(_ name: String, _ label: String, _ core: SDTMCore, _ origin: SDTMOriginType = .collected, method: SDTMMethod? = nil, partial: Bool = false) -> SDTMVariable {
        char(name, label, Self.dtcLength, .timing, core, origin, method: method, type: partial ? .partialDatetime : .datetime)
    }

    func dy(_ name: String, _ label: String) -> SDTMVariable { num(name, label, .timing, .permissible, .derived, method: SDTMMethods.studyDay) }

    // MARK: Codelists read from the definition

    var armCodes: SDTMCodeList {
        SDTMCodeList(oid: "CL.ARMCD", name: "Arm Code", terms: study.arms.map { SDTMTerm($0.code.uppercased(), decode: SDTMText.ascii($0.name)) }, isStandard: false)
    }

    var armNames: SDTMCodeList {
        SDTMCodeList(oid: "CL.ARM", name: "Arm", terms: study.arms.map { SDTMTerm(SDTMText.ascii($0.name)) }, isStandard: false)
    }

    var criteriaCodes: SDTMCodeList {
        let inclusion = study.eligibility.inclusion.enumerated().map { SDTMTerm(String(format: "INCL%02d", $0 + 1), decode: SDTMText.ascii($1.text)) }
        let exclusion = study.eligibility.exclusion.enumerated().map { SDTMTerm(String(format: "EXCL%02d", $0 + 1), decode: SDTMText.ascii($1.text)) }
        return SDTMCodeList(oid: "CL.IETESTCD", name: "Inclusion/Exclusion Criterion Short Name", terms: inclusion + exclusion, isStandard: false)
    }

    /// The lab tests the definition's forms collect (fields with `lab:`), in form order.
    var labTests: [LabTest] {
        var seen: Set<String> = []
        return study.forms.flatMap(\.fields).compactMap { $0.lab.flatMap(study.labTest) }.filter { seen.insert($0.code).inserted }
    }

    // MARK: Datasets

    func domains(designRows: [String: [[XPORTValue]]]) -> [SDTMDomain] {
        var list = [dm(), ds(), ie()]
        list.append(blinded ? ec() : ex())
        list += [ae(), lb()]
        // VS only where some form field is a vital sign: a dataset that can hold no record is not produced.
        if !vitals.isEmpty { list.append(vs()) }
        list.append(sv())
        list.append(ts(designRows["TS"] ?? []))
        if !blinded { list.append(ta(designRows["TA"] ?? [])) }
        list += [te(designRows["TE"] ?? []), tv(designRows["TV"] ?? []), ti(designRows["TI"] ?? [])]
        return list
    }

    func dm() -> SDTMDomain {
        var v = identifiers("DM", seq: false)
        v += [
            char("SUBJID", "Subject Identifier for the Study", 32, .topic, .required, .collected),
            dtc("RFSTDTC", "Subject Reference Start Date/Time", .expected, .derived, method: SDTMMethods.referenceStart),
            dtc("RFENDTC", "Subject Reference End Date/Time", .expected, .derived, method: SDTMMethods.referenceEnd, partial: true),
            dtc("RFXSTDTC", "Date/Time of First Study Treatment", .expected, .derived, method: SDTMMethods.firstDose),
            dtc("RFXENDTC", "Date/Time of Last Study Treatment", .expected, .derived, method: SDTMMethods.lastDose),
            dtc("RFICDTC", "Date/Time of Informed Consent", .expected),
            dtc("RFPENDTC", "Date/Time of End of Participation", .expected, .derived, method: SDTMMethods.participationEnd, partial: true),
            dtc("DTHDTC", "Date/Time of Death", .expected, partial: true),
            char("DTHFL", "Subject Death Flag", 1, .recordQualifier, .expected, .derived, method: SDTMMethods.death,
                 codeList: CDISCTerminology.codeList("NY", name: "No Yes Response (Y only)", terms: ["Y"], oid: "CL.NY.Y")),
            char("SITEID", "Study Site Identifier", longest(study.sites.map(\.code)), .recordQualifier, .required, .assigned,
                 codeList: SDTMCodeList(oid: "CL.SITEID", name: "Site Identifier", terms: study.sites.map { SDTMTerm(SDTMText.ascii($0.code), decode: SDTMText.ascii($0.name)) }, isStandard: false)),
            char("BRTHDTC", "Date/Time of Birth", 10, .recordQualifier, .permissible, .collected, type: .date),
            num("AGE", "Age", .recordQualifier, .expected, .derived, method: SDTMMethods.age),
            char("AGEU", "Age Units", 5, .variableQualifier, .expected, .assigned, codeList: CDISCTerminology.codeList("AGEU", name: "Age Unit", terms: ["YEARS"])),
            char("SEX", "Sex", 16, .recordQualifier, .required, .collected, codeList: CDISCTerminology.codeList("SEX", name: "Sex", terms: ["F", "M", "U", "UNDIFFERENTIATED"])),
            char("RACE", "Race", 1, .recordQualifier, .expected, .collected, comment: "Race is not collected by this study's forms; the variable is Expected and so included."),
        ]
        if !blinded {
            let armCode = longest(study.arms.map { $0.code }), armName = longest(study.arms.map(\.name))
            v += [
                char("ARMCD", "Planned Arm Code", armCode, .recordQualifier, .expected, .derived, method: SDTMMethods.arm, codeList: armCodes),
                char("ARM", "Description of Planned Arm", armName, .synonymQualifier, .expected, .derived, method: SDTMMethods.arm, codeList: armNames),
                char("ACTARMCD", "Actual Arm Code", armCode, .recordQualifier, .expected, .derived, method: SDTMMethods.actualArm, codeList: armCodes),
                char("ACTARM", "Description of Actual Arm", armName, .synonymQualifier, .expected, .derived, method: SDTMMethods.actualArm, codeList: armNames),
                char("ARMNRS", "Reason Arm and/or Actual Arm is Null", 21, .recordQualifier, .expected, .derived, method: SDTMMethods.armNull,
                     codeList: CDISCTerminology.codeList("ARMNRS", name: "Arm Null Reason", terms: ["SCREEN FAILURE", "NOT ASSIGNED", "ASSIGNED, NOT TREATED"])),
                char("ACTARMUD", "Description of Unplanned Actual Arm", 1, .synonymQualifier, .expected, .derived,
                     comment: "Casebook gives only planned doses, so no actual arm is unplanned."),
            ]
        }
        v.append(char("COUNTRY", "Country", 3, .recordQualifier, .required, .assigned,
                      comment: "The study definition gives no country for its sites (ISO 3166-1 alpha-3); null until it does."))
        return SDTMDomain(
            name: "DM", label: "Demographics", sdtmClass: .specialPurpose, structure: "One record per subject", keys: ["STUDYID", "USUBJID"], variables: v,
            comment: blinded ? "Blinded: ARMCD, ARM, ACTARMCD, ACTARM, ARMNRS and ACTARMUD are left out." : nil)
    }

    func ds() -> SDTMDomain {
        let decodes = CDISCTerminology.lists["NCOMPLT"].map { Array($0.terms.keys).sorted() } ?? []
        let terms = Array(Set(decodes + SDTMDisposition.Reason.allCases.map(\.rawValue) + ["INFORMED CONSENT OBTAINED", "RANDOMIZED", "SCREEN FAILURE"])).sorted()
        let randomTerm = study.arms.map { "RANDOMIZED TO \($0.name)" } + (study.randomizations ?? []).map { "RANDOMIZED (\($0.name ?? $0.code))" }
        let v = identifiers("DS") + [
            char("DSTERM", "Reported Term for the Disposition Event", max(Self.free, longest(randomTerm)), .topic, .required, .collected),
            char("DSDECOD", "Standardized Disposition Term", longest(terms), .synonymQualifier, .required, .derived, method: SDTMMethods.disposition,
                 codeList: SDTMCodeList(oid: "CL.DSDECOD", name: "Standardized Disposition Term", terms: terms.map { t in
                     SDTMTerm(t, nci: CDISCTerminology.code("NCOMPLT", t) ?? CDISCTerminology.code("PROTMLST", t)) }, isStandard: true)),
            char("DSCAT", "Category for Disposition Event", 18, .groupingQualifier, .expected, .assigned,
                 codeList: CDISCTerminology.codeList("DSCAT", name: "Category for Disposition Event", terms: ["DISPOSITION EVENT", "PROTOCOL MILESTONE"])),
            epoch(),
            dtc("DSSTDTC", "Start Date/Time of Disposition Event", .expected, partial: true),
            dy("DSSTDY", "Study Day of Start of Disposition Event"),
        ]
        return SDTMDomain(
            name: "DS", label: "Disposition", sdtmClass: .events, structure: "One record per disposition status or protocol milestone per subject",
            keys: ["STUDYID", "USUBJID", "DSDECOD", "DSSTDTC"], variables: v)
    }

    func ie() -> SDTMDomain {
        let v = identifiers("IE") + [
            char("IETESTCD", "Inclusion/Exclusion Criterion Short Name", 6, .topic, .required, .derived, method: SDTMMethods.criteria, codeList: criteriaCodes),
            char("IETEST", "Inclusion/Exclusion Criterion", longest((study.eligibility.inclusion + study.eligibility.exclusion).map(\.text)), .synonymQualifier,
                 .required, .assigned),
            char("IECAT", "Inclusion/Exclusion Category", 9, .groupingQualifier, .required, .assigned,
                 codeList: CDISCTerminology.codeList("IECAT", name: "Category for Inclusion/Exclusion", terms: ["EXCLUSION", "INCLUSION"])),
            char("IEORRES", "I/E Criterion Original Result", 1, .resultQualifier, .required, .derived, method: SDTMMethods.criteria, codeList: ny),
            char("IESTRESC", "I/E Criterion Result in Std Format", 1, .resultQualifier, .required, .derived, method: SDTMMethods.criteria, codeList: ny),
        ] + visitVariables(core: .permissible) + [
            epoch(),
            dtc("IEDTC", "Date/Time of Collection", .permissible),
            dy("IEDY", "Study Day of Collection"),
        ]
        return SDTMDomain(
            name: "IE", label: "Inclusion/Exclusion Criteria Not Met", sdtmClass: .findings, structure: "One record per I/E criterion not met per subject",
            keys: ["STUDYID", "USUBJID", "IETESTCD"], variables: v)
    }

    var plannedDoses: [PlannedDose] { study.arms.flatMap { $0.doses ?? [] } }

    var routeList: SDTMCodeList {
        let routes = Array(Set(plannedDoses.compactMap { SDTMExport.route($0.route) })).sorted()
        return CDISCTerminology.codeList("ROUTE", name: "Route of Administration", terms: routes)
    }

    func ex() -> SDTMDomain {
        let treatments = study.interventions.map(\.name)
        let v = identifiers("EX") + [
            char("EXTRT", "Name of Treatment", longest(treatments), .topic, .required, .derived,
                 codeList: SDTMCodeList(oid: "CL.EXTRT", name: "Study Treatment", terms: treatments.map { SDTMTerm(SDTMText.ascii($0)) }, isStandard: false)),
            num("EXDOSE", "Dose", .recordQualifier, .expected, .collected, type: .float),
            char("EXDOSU", "Dose Units", longest(plannedDoses.map(\.unit), atLeast: 20), .variableQualifier, .expected, .collected),
            char("EXDOSFRQ", "Dosing Frequency per Interval", 4, .variableQualifier, .permissible, .assigned),
            char("EXROUTE", "Route of Administration", longest(routeList.terms.map(\.value)), .variableQualifier, .permissible, .protocolDefined, codeList: routeList),
            char("EXLOT", "Lot Number", Self.free, .recordQualifier, .permissible, .collected),
        ] + visitVariables(core: .permissible) + [
            epoch(),
            dtc("EXSTDTC", "Start Date/Time of Treatment", .expected),
            dtc("EXENDTC", "End Date/Time of Treatment", .permissible),
            dy("EXSTDY", "Study Day of Start of Treatment"),
            dy("EXENDY", "Study Day of End of Treatment"),
        ]
        return SDTMDomain(
            name: "EX", label: "Exposure", sdtmClass: .interventions, structure: "One record per administration per subject",
            keys: ["STUDYID", "USUBJID", "EXTRT", "EXSTDTC"], variables: v,
            comment: "Doses given; planned doses not given are left out (SDTMIG 3.3 section 6.1.4).")
    }

    func ec() -> SDTMDomain {
        let names = SDTMMasking(study: study).names
        let v = identifiers("EC") + [
            char("ECTRT", "Name of Treatment", longest(names), .topic, .required, .derived, method: SDTMMethods.maskedTreatment),
            char("ECMOOD", "Mood", 9, .recordQualifier, .permissible, .assigned),
            char("ECPRESP", "Pre-Specified", 1, .variableQualifier, .permissible, .assigned, codeList: ny),
            char("ECOCCUR", "Occurrence", 1, .recordQualifier, .permissible, .collected, codeList: ny),
            char("ECREASOC", "Reason for Occur Value", Self.free, .recordQualifier, .permissible, .collected),
            num("ECDOSE", "Dose", .recordQualifier, .expected, .collected, type: .float, method: SDTMMethods.maskedTreatment),
            char("ECDOSU", "Dose Units", longest(plannedDoses.map(\.unit), atLeast: 20), .variableQualifier, .expected, .collected, method: SDTMMethods.maskedTreatment),
            char("ECROUTE", "Route of Administration", longest(routeList.terms.map(\.value)), .variableQualifier, .permissible, .protocolDefined, codeList: routeList),
        ] + visitVariables(core: .permissible) + [
            epoch(),
            dtc("ECSTDTC", "Start Date/Time of Treatment", .expected),
            dtc("ECENDTC", "End Date/Time of Treatment", .permissible),
            dy("ECSTDY", "Study Day of Start of Treatment"),
            dy("ECENDY", "Study Day of End of Treatment"),
        ]
        return SDTMDomain(
            name: "EC", label: "Exposure as Collected", sdtmClass: .interventions,
            structure: "One record per protocol-specified dose per subject", keys: ["STUDYID", "USUBJID", "ECTRT", "VISITNUM", "ECSTDTC"], variables: v,
            comment: "Blinded: exposure as collected with masked treatment names, in place of EX; every planned dose, given (ECOCCUR Y) or not (N).")
    }

    func ae() -> SDTMDomain {
        let meddra = SDTMCodeList(
            oid: "CL.MEDDRA", name: "Adverse Event Dictionary", terms: [], isStandard: false,
            dictionary: SDTMDictionary(name: "MedDRA", version: Self.meddraVersion(study.safety.ctcaeVersion)))
        let coding = "Needs the MedDRA dictionary, which Casebook does not hold: the variable is Expected and so included, null."
        let flags: [(String, String)] = [
            ("AESCONG", "Congenital Anomaly or Birth Defect"), ("AESDISAB", "Persist or Signif Disability/Incapacity"), ("AESDTH", "Results in Death"),
            ("AESHOSP", "Requires or Prolongs Hospitalization"), ("AESLIFE", "Is Life Threatening"), ("AESMIE", "Other Medically Important Serious Event"),
        ]
        var v = identifiers("AE") + [
            char("AETERM", "Reported Term for the Adverse Event", Self.free, .topic, .required, .collected),
            char("AELLT", "Lowest Level Term", Self.free, .variableQualifier, .expected, .collected, codeList: meddra,
                 comment: "The CTCAE term recorded, which is a MedDRA lowest level term."),
            char("AELLTCD", "Lowest Level Term Code", 8, .variableQualifier, .expected, .collected, codeList: meddra),
            char("AEDECOD", "Dictionary-Derived Term", Self.free, .synonymQualifier, .required, .assigned, codeList: meddra,
                 comment: "The CTCAE term (a MedDRA lowest level term): its preferred term needs the MedDRA dictionary."),
            char("AEPTCD", "Preferred Term Code", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AEHLT", "High Level Term", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AEHLTCD", "High Level Term Code", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AEHLGT", "High Level Group Term", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AEHLGTCD", "High Level Group Term Code", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AEBODSYS", "Body System or Organ Class", Self.free, .groupingQualifier, .expected, .assigned, codeList: meddra,
                 comment: "The system organ class CTCAE lists for the term."),
            char("AEBDSYCD", "Body System or Organ Class Code", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AESOC", "Primary System Organ Class", Self.free, .variableQualifier, .expected, .assigned, codeList: meddra,
                 comment: "The system organ class CTCAE lists for the term."),
            char("AESOCCD", "Primary System Organ Class Code", 1, .variableQualifier, .expected, .assigned, codeList: meddra, comment: coding),
            char("AESER", "Serious Event", 1, .recordQualifier, .expected, .collected, codeList: ny),
            char("AEACN", "Action Taken with Study Treatment", 16, .recordQualifier, .expected, .collected,
                 codeList: CDISCTerminology.codeList("ACN", name: "Action Taken with Study Treatment", terms: SDTMAction.allCases.map(\.rawValue))),
            char("AEREL", "Causality", 16, .recordQualifier, .expected, .collected,
                 codeList: SDTMCodeList(oid: "CL.AEREL", name: "Causality", terms: Attribution.allCases.map { SDTMTerm(SDTMExport.relation($0)) }, isStandard: false)),
            char("AEOUT", "Outcome of Adverse Event", 32, .recordQualifier, .permissible, .collected,
                 codeList: CDISCTerminology.codeList("OUT", name: "Outcome of Event", terms: SDTMOutcome.allCases.map(\.rawValue))),
        ]
        v += flags.map { char($0.0, $0.1, 1, .recordQualifier, .permissible, .collected, codeList: ny) }
        v += [
            char("AETOXGR", "Standard Toxicity Grade", 1, .recordQualifier, .permissible, .collected,
                 codeList: SDTMCodeList(oid: "CL.TOXGR", name: "CTCAE Grade", terms: (1...5).map { SDTMTerm(String($0)) }, isStandard: false),
                 comment: "CTCAE version \(study.safety.ctcaeVersion), the study's."),
            epoch(),
            dtc("AESTDTC", "Start Date/Time of Adverse Event", .expected),
            dtc("AEENDTC", "End Date/Time of Adverse Event", .expected),
            dy("AESTDY", "Study Day of Start of Adverse Event"),
            dy("AEENDY", "Study Day of End of Adverse Event"),
        ]
        return SDTMDomain(
            name: "AE", label: "Adverse Events", sdtmClass: .events, structure: "One record per adverse event per subject",
            keys: ["STUDYID", "USUBJID", "AEDECOD", "AESTDTC"], variables: v)
    }

    /// The MedDRA release each CTCAE version is coded in (NCI CTEP: v4.03 on MedDRA 12.0, v5.0 on MedDRA 20.1).
    static func meddraVersion(_ ctcae: String) -> String {
        ctcae.hasPrefix("5") ? "20.1" : ctcae.hasPrefix("4") ? "12.0" : "unknown"
    }

    func lb() -> SDTMDomain {
        let tests = labTests
        let all = study.labTests
        let codes = SDTMCodeList(
            oid: "CL.LBTESTCD", name: "Laboratory Test Code",
            terms: tests.map { SDTMTerm($0.code, decode: SDTMText.ascii($0.name), nci: CDISCTerminology.code("LBTESTCD", $0.code)) },
            nci: CDISCTerminology.lists["LBTESTCD"]?.nci, isStandard: true)
        let units = all.map(\.unit) + (study.labs ?? []).flatMap { ($0.conversions ?? []).map(\.unit) } + study.forms.flatMap(\.fields).filter { $0.lab != nil }.compactMap(\.unit)
        let valueList = tests.map { test in
            SDTMValueListItem(
                whereVariable: "LBTESTCD", whereValue: test.code, type: .float, length: 20, significantDigits: nil,
                description: "\(SDTMText.ascii(test.name)), as entered", origin: .collected, codeList: nil)
        }
        let v = identifiers("LB") + [
            char("LBTESTCD", "Lab Test or Examination Short Name", 8, .topic, .required, .assigned, codeList: codes),
            char("LBTEST", "Lab Test or Examination Name", min(40, longest(all.map(\.name))), .synonymQualifier, .required, .assigned),
            char("LBCAT", "Category for Lab Test", 1, .groupingQualifier, .expected, .assigned,
                 comment: "Casebook's lab catalogue gives no category; the variable is Expected and so included, null."),
            char("LBORRES", "Result or Finding in Original Units", 20, .resultQualifier, .expected, .collected, valueList: valueList),
            char("LBORRESU", "Original Units", longest(units, atLeast: 20), .variableQualifier, .expected, .collected),
            char("LBORNRLO", "Reference Range Lower Limit in Orig Unit", 20, .variableQualifier, .expected, .derived, method: SDTMMethods.originalRange),
            char("LBORNRHI", "Reference Range Upper Limit in Orig Unit", 20, .variableQualifier, .expected, .derived, method: SDTMMethods.originalRange),
            char("LBSTRESC", "Character Result/Finding in Std Format", 20, .resultQualifier, .expected, .derived, method: SDTMMethods.standardResult),
            num("LBSTRESN", "Numeric Result/Finding in Standard Units", .resultQualifier, .expected, .derived, type: .float, method: SDTMMethods.standardResult),
            char("LBSTRESU", "Standard Units", longest(all.map(\.unit)), .variableQualifier, .expected, .assigned),
            num("LBSTNRLO", "Reference Range Lower Limit-Std Units", .variableQualifier, .expected, .collected, type: .float),
            num("LBSTNRHI", "Reference Range Upper Limit-Std Units", .variableQualifier, .expected, .collected, type: .float),
            char("LBNRIND", "Reference Range Indicator", 6, .variableQualifier, .expected, .derived, method: SDTMMethods.rangeIndicator,
                 codeList: CDISCTerminology.codeList("NRIND", name: "Normal Range Indicator", terms: ["HIGH", "LOW", "NORMAL"])),
            char("LBLOINC", "LOINC Code", longest(all.compactMap(\.loinc)), .synonymQualifier, .permissible, .assigned),
            char("LBLOBXFL", "Last Observation Before Exposure Flag", 1, .recordQualifier, .permissible, .derived, method: SDTMMethods.lastBeforeExposure,
                 codeList: CDISCTerminology.codeList("NY", name: "No Yes Response (Y only)", terms: ["Y"], oid: "CL.NY.Y")),
            char("LBTOXGR", "Standard Toxicity Grade", 1, .recordQualifier, .permissible, .derived,
                 codeList: SDTMCodeList(oid: "CL.LBTOXGR", name: "CTCAE Grade", terms: (0...5).map { SDTMTerm(String($0)) }, isStandard: false),
                 comment: "CTCAE version \(study.safety.ctcaeVersion) grade against the site's range in force (Casebook's grading)."),
        ] + visitVariables() + [
            epoch(),
            dtc("LBDTC", "Date/Time of Specimen Collection", .expected),
            dy("LBDY", "Study Day of Specimen Collection"),
        ]
        return SDTMDomain(
            name: "LB", label: "Laboratory Test Results", sdtmClass: .findings, structure: "One record per lab test per time point per visit per subject",
            keys: ["STUDYID", "USUBJID", "LBTESTCD", "VISITNUM", "LBDTC"], variables: v)
    }

    func vs() -> SDTMDomain {
        var seen: Set<String> = []
        let tests = vitals.map(\.test).filter { seen.insert($0.code).inserted }
        let codes = SDTMCodeList(
            oid: "CL.VSTESTCD", name: "Vital Signs Test Code",
            terms: tests.map { SDTMTerm($0.code, decode: $0.name, nci: CDISCTerminology.code("VSTESTCD", $0.code)) }, nci: CDISCTerminology.lists["VSTESTCD"]?.nci,
            isStandard: true)
        let units = Array(Set(vitals.map(\.unit.cdisc))).sorted(), standard = Array(Set(tests.map(\.standardUnit))).sorted()
        let unitList = { (oid: String, values: [String]) in
            SDTMCodeList(
                oid: oid, name: "Units for Vital Signs Results", terms: values.map { SDTMTerm($0, nci: CDISCTerminology.code("VSRESU", $0)) },
                nci: CDISCTerminology.lists["VSRESU"]?.nci, isStandard: true)
        }
        let valueList = tests.map { test in
            SDTMValueListItem(
                whereVariable: "VSTESTCD", whereValue: test.code, type: .float, length: 20, significantDigits: nil, description: "\(test.name), as recorded",
                origin: .collected, codeList: nil)
        }
        let points = timePoints.values.map(\.name)
        let v = identifiers("VS") + [
            char("VSTESTCD", "Vital Signs Test Short Name", 8, .topic, .required, .assigned, codeList: codes),
            char("VSTEST", "Vital Signs Test Name", longest(tests.map(\.name)), .synonymQualifier, .required, .assigned),
            char("VSORRES", "Result or Finding in Original Units", 20, .resultQualifier, .expected, .collected, valueList: valueList),
            char("VSORRESU", "Original Units", longest(units), .variableQualifier, .expected, .collected, codeList: unitList("CL.VSORRESU", units)),
            char("VSSTRESC", "Character Result/Finding in Std Format", 20, .resultQualifier, .expected, .derived, method: SDTMMethods.vitalStandard),
            num("VSSTRESN", "Numeric Result/Finding in Standard Units", .resultQualifier, .expected, .derived, type: .float, method: SDTMMethods.vitalStandard),
            char("VSSTRESU", "Standard Units", longest(standard), .variableQualifier, .expected, .assigned, codeList: unitList("CL.VSSTRESU", standard)),
            char("VSLOBXFL", "Last Observation Before Exposure Flag", 1, .recordQualifier, .permissible, .derived, method: SDTMMethods.lastBeforeExposure,
                 codeList: CDISCTerminology.codeList("NY", name: "No Yes Response (Y only)", terms: ["Y"], oid: "CL.NY.Y")),
        ] + visitVariables() + [
            epoch(),
            dtc("VSDTC", "Date/Time of Measurements", .expected, partial: true),
            dy("VSDY", "Study Day of Vital Signs"),
            char("VSTPT", "Planned Time Point Name", longest(points), .timing, .permissible, .assigned,
                 comment: "The vital-sign form's name where a visit has more than one vital-sign form."),
            num("VSTPTNUM", "Planned Time Point Number", .timing, .permissible, .assigned),
        ]
        return SDTMDomain(
            name: "VS", label: "Vital Signs", sdtmClass: .findings, structure: "One record per vital sign measurement per time point per visit per subject",
            keys: ["STUDYID", "USUBJID", "VSTESTCD", "VISITNUM", "VSTPTNUM"], variables: v)
    }

    func sv() -> SDTMDomain {
        let v = identifiers("SV", seq: false) + visitVariables(core: .required) + [
            dtc("SVSTDTC", "Start Date/Time of Visit", .expected, partial: true),
            dtc("SVENDTC", "End Date/Time of Visit", .expected, partial: true),
            dy("SVSTDY", "Study Day of Start of Visit"),
            dy("SVENDY", "Study Day of End of Visit"),
        ]
        return SDTMDomain(
            name: "SV", label: "Subject Visits", sdtmClass: .specialPurpose, structure: "One record per actual visit per subject",
            keys: ["STUDYID", "USUBJID", "VISITNUM"], variables: v)
    }

    // MARK: Trial design variables

    func designIdentifiers(_ domain: String) -> [SDTMVariable] {
        [
            char("STUDYID", "Study Identifier", studyID.utf8.count, .identifier, .required, .assigned),
            char("DOMAIN", "Domain Abbreviation", 2, .identifier, .required, .assigned, codeList: domainList(domain)),
        ]
    }

    /// The longest text in a column of rows already made from the definition.
    func width(_ rows: [[XPORTValue]], _ column: Int) -> Int {
        rows.map { $0[column].text?.utf8.count ?? 0 }.reduce(1, max)
    }

    func ts(_ rows: [[XPORTValue]]) -> SDTMDomain {
        let extra = (rows.first?.count ?? 11) - 11
        let parmcds = Array(Set(rows.compactMap { $0[4].text })).sorted()
        var v = designIdentifiers("TS") + [
            num("TSSEQ", "Sequence Number", .identifier, .required, .derived, method: SDTMMethods.sequence),
            char("TSGRPID", "Group ID", width(rows, 3), .identifier, .permissible, .assigned),
            char("TSPARMCD", "Trial Summary Parameter Short Name", 8, .topic, .required, .assigned,
                 codeList: CDISCTerminology.codeList("TSPARMCD", name: "Trial Summary Parameter Test Code", terms: parmcds, decodes: SDTMTrialSummary.names)),
            char("TSPARM", "Trial Summary Parameter", width(rows, 5), .synonymQualifier, .required, .assigned),
            char("TSVAL", "Parameter Value", width(rows, 6), .resultQualifier, .expected, .protocolDefined),
        ]
        for n in 0..<extra {
            v.append(char("TSVAL\(n + 1)", "Parameter Value \(n + 1)", width(rows, 7 + n), .resultQualifier, .permissible, .protocolDefined,
                          comment: "The part of TSVAL past 200 characters (SDTMIG 3.3 section 7.4.2)."))
        }
        v += [
            char("TSVALNF", "Parameter Null Flavor", width(rows, 7 + extra), .resultQualifier, .permissible, .assigned,
                 codeList: SDTMCodeList(oid: "CL.ISO21090", name: "Null Flavors", terms: [], isStandard: false, dictionary: SDTMDictionary(name: "ISO 21090 NullFlavor", version: "2017"))),
            char("TSVALCD", "Parameter Value Code", width(rows, 8 + extra), .resultQualifier, .expected, .assigned),
            char("TSVCDREF", "Name of the Reference Terminology", width(rows, 9 + extra), .resultQualifier, .expected, .assigned),
            char("TSVCDVER", "Version of the Reference Terminology", width(rows, 10 + extra), .resultQualifier, .expected, .assigned),
        ]
        return SDTMDomain(
            name: "TS", label: "Trial Summary", sdtmClass: .trialDesign, structure: "One record per trial summary parameter value",
            keys: ["STUDYID", "TSPARMCD", "TSSEQ"], variables: v)
    }

    var elementCodes: SDTMCodeList {
        SDTMCodeList(oid: "CL.ETCD", name: "Element Code", terms: design.elements.map { SDTMTerm($0.code, decode: $0.name) }, isStandard: false)
    }

    func ta(_ rows: [[XPORTValue]]) -> SDTMDomain {
        let v = designIdentifiers("TA") + [
            char("ARMCD", "Planned Arm Code", width(rows, 2), .topic, .required, .protocolDefined, codeList: armCodes),
            char("ARM", "Description of Planned Arm", width(rows, 3), .synonymQualifier, .required, .protocolDefined, codeList: armNames),
            num("TAETORD", "Planned Order of Element within Arm", .timing, .required, .protocolDefined),
            char("ETCD", "Element Code", width(rows, 5), .recordQualifier, .required, .protocolDefined, codeList: elementCodes),
            char("ELEMENT", "Description of Element", width(rows, 6), .synonymQualifier, .permissible, .protocolDefined),
            char("TABRANCH", "Branch", width(rows, 7), .rule, .expected, .protocolDefined),
            char("TATRANS", "Transition Rule", width(rows, 8), .rule, .expected, .protocolDefined),
            char("EPOCH", "Epoch", 9, .timing, .required, .protocolDefined, codeList: epochList),
        ]
        return SDTMDomain(
            name: "TA", label: "Trial Arms", sdtmClass: .trialDesign, structure: "One record per planned Element per Arm",
            keys: ["STUDYID", "ARMCD", "TAETORD"], variables: v)
    }

    func te(_ rows: [[XPORTValue]]) -> SDTMDomain {
        let v = designIdentifiers("TE") + [
            char("ETCD", "Element Code", width(rows, 2), .topic, .required, .protocolDefined, codeList: elementCodes),
            char("ELEMENT", "Description of Element", width(rows, 3), .synonymQualifier, .required, .protocolDefined),
            char("TESTRL", "Rule for Start of Element", width(rows, 4), .rule, .required, .protocolDefined),
            char("TEENRL", "Rule for End of Element", width(rows, 5), .rule, .permissible, .protocolDefined),
        ]
        return SDTMDomain(
            name: "TE", label: "Trial Elements", sdtmClass: .trialDesign, structure: "One record per planned Element", keys: ["STUDYID", "ETCD"], variables: v,
            comment: blinded ? "Blinded: the arms' treatment elements are shown as one, BLINDED." : nil)
    }

    func tv(_ rows: [[XPORTValue]]) -> SDTMDomain {
        let v = designIdentifiers("TV") + [
            num("VISITNUM", "Visit Number", .topic, .required, .protocolDefined, codeList: visitList),
            char("VISIT", "Visit Name", width(rows, 3), .synonymQualifier, .permissible, .protocolDefined),
            char("ARMCD", "Planned Arm Code", width(rows, 4), .recordQualifier, .expected, .protocolDefined),
            char("TVSTRL", "Visit Start Rule", width(rows, 5), .rule, .required, .protocolDefined),
            char("TVENRL", "Visit End Rule", width(rows, 6), .rule, .permissible, .protocolDefined),
        ]
        return SDTMDomain(
            name: "TV", label: "Trial Visits", sdtmClass: .trialDesign, structure: "One record per planned Visit per Arm", keys: ["STUDYID", "VISITNUM", "ARMCD"],
            variables: v, comment: blinded ? "Blinded: ARMCD is left null for visits only some arms have." : nil)
    }

    func ti(_ rows: [[XPORTValue]]) -> SDTMDomain {
        let v = designIdentifiers("TI") + [
            char("IETESTCD", "Incl/Excl Criterion Short Name", 6, .topic, .required, .protocolDefined, codeList: criteriaCodes),
            char("IETEST", "Inclusion/Exclusion Criterion", width(rows, 3), .synonymQualifier, .required, .protocolDefined),
            char("IECAT", "Inclusion/Exclusion Category", 9, .groupingQualifier, .required, .protocolDefined,
                 codeList: CDISCTerminology.codeList("IECAT", name: "Category for Inclusion/Exclusion", terms: ["EXCLUSION", "INCLUSION"])),
            char("TIVERS", "Protocol Criteria Versions", width(rows, 5), .recordQualifier, .permissible, .protocolDefined),
        ]
        return SDTMDomain(
            name: "TI", label: "Trial Inclusion/Exclusion Criteria", sdtmClass: .trialDesign, structure: "One record per I/E criterion",
            keys: ["STUDYID", "IETESTCD"], variables: v)
    }

    // MARK: Trial design rows

    func designRows(options: SDTMOptions, timeline: SDTMTimeline, visitNumber: [String: Double]) -> [String: [[XPORTValue]]] {
        var rows: [String: [[XPORTValue]]] = [:]
        rows["TS"] = SDTMTrialSummary(study: study, options: options, design: design, timeline: timeline).rows(studyID: studyID)
        if !blinded { rows["TA"] = taRows() }
        rows["TE"] = design.elements.map { e in
            [.text(studyID), .text("TE"), .text(e.code), .text(e.name), .text(e.startRule), .text(e.endRule)]
        }
        rows["TV"] = tvRows(timeline: timeline, visitNumber: visitNumber)
        let version = String(study.version)
        rows["TI"] = study.eligibility.inclusion.enumerated().map { i, c in
            [.text(studyID), .text("TI"), .text(String(format: "INCL%02d", i + 1)), text(c.text), .text("INCLUSION"), .text(version)]
        } + study.eligibility.exclusion.enumerated().map { i, c in
            [.text(studyID), .text("TI"), .text(String(format: "EXCL%02d", i + 1)), text(c.text), .text("EXCLUSION"), .text(version)]
        }
        return rows
    }

    func taRows() -> [[XPORTValue]] {
        let randomized = study.identity.allocation.uppercased() == "RANDOMIZED"
        var rows: [[XPORTValue]] = []
        for arm in study.arms {
            let path = design.paths[arm.code] ?? []
            guard let first = path.first else { continue }
            func row(_ order: Int, _ etcd: String, _ element: String, _ branch: String?, _ transition: String?, _ epoch: String) -> [XPORTValue] {
                [.text(studyID), .text("TA"), .text(arm.code.uppercased()), text(arm.name), .number(Double(order)), .text(etcd), text(element), text(branch), text(transition), .text(epoch)]
            }
            // SDTMIG 3.3 §7.2.1: the branch is written on the element at whose end the randomization happens.
            rows.append(row(1, "SCRN", "Screening", "\(randomized ? "Randomized" : "Allocated") to \(SDTMText.ascii(first.arm.name))", nil, SDTMTrialDesign.screening))
            for (index, step) in path.enumerated() {
                let code = design.armElement[step.arm.code] ?? ""
                var branch: String?
                if index + 1 < path.count, let stage = path[index + 1].stage {
                    branch = "\(SDTMText.ascii(stage.name ?? stage.code)): randomized to \(SDTMText.ascii(path[index + 1].arm.name))"
                }
                var transition: String?
                if index + 1 == path.count, let stage = design.stageSources[step.arm.code] {
                    transition = "Not randomized at \(SDTMText.ascii(stage.name ?? stage.code)): to follow-up"
                }
                rows.append(row(index + 2, code, SDTMText.ascii(step.arm.name), branch, transition, SDTMTrialDesign.treatment))
            }
            rows.append(row(path.count + 2, "FU", "Follow-up", nil, nil, SDTMTrialDesign.followUp))
        }
        return rows
    }

    func tvRows(timeline: SDTMTimeline, visitNumber: [String: Double]) -> [[XPORTValue]] {
        func anchorLabel(_ code: String) -> String {
            if let anchor = study.anchors.first(where: { $0.code == code }) { return SDTMText.ascii(anchor.label) }
            if let dose = study.arms.flatMap({ $0.doses ?? [] }).first(where: { $0.code == code }) { return SDTMText.ascii(dose.name ?? dose.code) }
            return SDTMText.ascii(code)
        }
        func span(_ offset: Offset) -> String {
            let unit = ["h": "hour", "d": "day", "w": "week"][offset.unit.rawValue] ?? offset.unit.rawValue
            let n = abs(offset.value)
            return "\(n) \(unit)\(n == 1 ? "" : "s")"
        }
        var rows: [[XPORTValue]] = []
        for visit in study.visits {
            var rule: String
            if let anchor = visit.anchor {
                let target = visit.target ?? Offset(0, .days)
                let label = anchorLabel(anchor)
                if target.value == 0 {
                    rule = target.unit == .hours ? "At \(label)" : "On \(label)"
                } else {
                    rule = "\(span(target)) \(target.value > 0 ? "after" : "before") \(label)"
                }
                if let window = visit.window, window.before.value != 0 || window.after.value != 0 {
                    rule += " (window: \(span(window.before)) before to \(span(window.after)) after)"
                }
            } else if let defined = visit.defines {
                rule = "When \(anchorLabel(defined)) happens"
            } else {
                rule = SDTMText.ascii(visit.name)
            }
            let arms: [String?] = blinded ? [nil] : (visit.arms.map { $0.map(Optional.some) } ?? [nil])
            for arm in arms {
                rows.append([.text(studyID), .text("TV"), .number(visitNumber[visit.code] ?? 0), text(visit.name), text(arm?.uppercased()), .text(rule), .text("")])
            }
        }
        return rows
    }
}

/// Doses as the blind shows them (EC): a dose's name, amount and unit only where every arm with doses plans that
/// dose alike, so that nothing shown differs between arms.
struct SDTMMasking {
    static let masked = "MASKED TREATMENT"
    let study: StudyDefinition

    func dose(_ code: String) -> (name: String, amount: Double?, unit: String?) {
        let plans = study.arms.filter { !($0.doses ?? []).isEmpty }.map { $0.doses?.first { $0.code == code } }
        let all = plans.compactMap { $0 }
        guard all.count == plans.count, let first = all.first else { return (Self.masked, nil, nil) }
        let name = all.allSatisfy { $0.name == first.name } ? first.name.map(SDTMText.ascii) ?? Self.masked : Self.masked
        let same = all.allSatisfy { $0.amount == first.amount && $0.unit == first.unit && $0.perKg == first.perKg }
        return (name, same ? first.amount : nil, same ? first.unit : nil)
    }

    var names: [String] {
        Array(Set(study.arms.flatMap { ($0.doses ?? []).map(\.code) })).map { dose($0).name } + [Self.masked]
    }
}

// MARK: - Trial summary

/// TS parameters (SDTMIG 3.3 §7.4.2 and its Appendix C1 codes), each read from the definition or, where the
/// definition holds nothing to read, given a null flavour (ISO 21090: NI no information, PINF no upper limit).
struct SDTMTrialSummary {
    struct Row {
        var parm: String
        var value: String?
        var nullFlavor: String?
        var code: String?
        var reference: String?
        var version: String?
        var group: String?
    }

    static let names: [String: String] = [
        "ACTSUB": "Actual Number of Subjects", "ADAPT": "Adaptive Design", "ADDON": "Added on to Existing Treatments",
        "AGEMAX": "Planned Maximum Age of Subjects", "AGEMIN": "Planned Minimum Age of Subjects", "DCUTDESC": "Data Cutoff Description",
        "DCUTDTC": "Data Cutoff Date", "DOSE": "Dose per Administration", "DOSFRQ": "Dosing Frequency", "DOSU": "Dose Units",
        "FCNTRY": "Planned Country of Investigational Sites", "HLTSUBJI": "Healthy Subject Indicator", "INDIC": "Trial Disease/Condition Indication",
        "INTMODEL": "Intervention Model", "INTTYPE": "Intervention Type", "LENGTH": "Trial Length", "NARMS": "Planned Number of Arms",
        "OBJPRIM": "Trial Primary Objective", "OUTMSPRI": "Primary Outcome Measure", "OUTMSSEC": "Secondary Outcome Measure",
        "PLANSUB": "Planned Number of Subjects", "RANDOM": "Trial is Randomized", "RANDQT": "Randomization Quotient", "REGID": "Registry Identifier",
        "ROUTE": "Route of Administration", "SDTIGVER": "SDTM IG Version", "SDTMVER": "SDTM Version", "SENDTC": "Study End Date",
        "SEXPOP": "Sex of Participants", "SPONSOR": "Clinical Study Sponsor", "SSTDTC": "Study Start Date", "STOPRULE": "Study Stop Rules",
        "STYPE": "Study Type", "TBLIND": "Trial Blinding Schema", "TCNTRL": "Control Type", "TDIGRP": "Diagnosis Group", "TINDTP": "Trial Intent Type",
        "TITLE": "Trial Title", "TPHASE": "Trial Phase Classification", "TRT": "Investigational Therapy or Treatment", "TTYPE": "Trial Type",
    ]

    /// Parameters FDA's Study Data Technical Conformance Guide expects in every TS, present here for every study.
    static let expected = [
        "ACTSUB", "ADAPT", "ADDON", "AGEMAX", "AGEMIN", "HLTSUBJI", "INDIC", "INTMODEL", "INTTYPE", "LENGTH", "NARMS", "OBJPRIM", "OUTMSPRI", "PLANSUB",
        "RANDOM", "REGID", "SDTIGVER", "SDTMVER", "SEXPOP", "SPONSOR", "SSTDTC", "STYPE", "TBLIND", "TCNTRL", "TDIGRP", "TINDTP", "TITLE", "TPHASE",
        "TRT", "TTYPE", "FCNTRY", "STOPRULE",
    ]

    let study: StudyDefinition
    let options: SDTMOptions
    let design: SDTMTrialDesign
    let timeline: SDTMTimeline

    func cdisc(_ parm: String, _ list: String, _ value: String?, group: String? = nil) -> Row {
        guard let value else { return Row(parm: parm, nullFlavor: "NI", group: group) }
        let code = CDISCTerminology.code(list, value)
        return Row(parm: parm, value: value, code: code, reference: code == nil ? nil : "CDISC", version: code == nil ? nil : CDISCTerminology.version, group: group)
    }

    func plain(_ parm: String, _ value: String?, nullFlavor: String = "NI", group: String? = nil) -> Row {
        value.map { Row(parm: parm, value: $0, group: group) } ?? Row(parm: parm, nullFlavor: nullFlavor, group: group)
    }

    func iso(_ parm: String, _ value: String?, nullFlavor: String = "NI") -> Row {
        value.map { Row(parm: parm, value: $0, reference: "ISO 8601") } ?? Row(parm: parm, nullFlavor: nullFlavor)
    }

    /// Investigational products: interventions given in a dose not marked placebo.
    var investigational: [Intervention] {
        let products = Set(study.arms.flatMap { $0.doses ?? [] }.filter { $0.placebo != true }.map(\.product))
        let listed = study.interventions.filter { products.contains($0.code) }
        return listed.isEmpty ? study.interventions.filter { i in study.arms.contains { $0.type.uppercased() == "EXPERIMENTAL" && $0.interventions.contains(i.code) } } : listed
    }

    var allRows: [Row] {
        var rows: [Row] = []
        let identity = study.identity
        rows.append(plain("ACTSUB", (options.actualSubjects ?? study.lifecycle.enrollment.actual).map(String.init)))
        rows.append(plain("ADAPT", nil))
        rows.append(plain("ADDON", nil))
        let ages = ageLimits()
        rows.append(iso("AGEMAX", ages.max.map { "P\(SDTMText.number($0))Y" }, nullFlavor: "PINF"))
        rows.append(iso("AGEMIN", ages.min.map { "P\(SDTMText.number($0))Y" }))
        if let cutoff = options.dataCutoff {
            rows.append(plain("DCUTDESC", options.dataCutoffDescription.map(SDTMText.ascii) ?? "DATA EXTRACTION"))
            rows.append(iso("DCUTDTC", SDTMLocalTime.of(cutoff, in: SiteCalendar.utc).iso))
        }
        for intervention in investigational {
            let group = intervention.code.uppercased()
            if let dose = intervention.dose {
                rows.append(Row(parm: "DOSE", value: SDTMText.number(dose.amount), group: group))
                rows.append(Row(parm: "DOSU", value: SDTMText.ascii(dose.unit), group: group))
            }
            if let frequency = intervention.frequency {
                // FREQ terms: only a single dose is read from the definition's words; other wording has no term here.
                let once = frequency.lowercased().contains("single") || frequency.lowercased() == "once"
                rows.append(once ? Row(parm: "DOSFRQ", value: "ONCE", group: group) : Row(parm: "DOSFRQ", nullFlavor: "OTH", group: group))
            }
            if let route = SDTMExport.route(intervention.route) { rows.append(cdisc("ROUTE", "ROUTE", route, group: group)) }
        }
        rows.append(plain("FCNTRY", nil))
        rows.append(plain("HLTSUBJI", nil))
        for condition in identity.conditions { rows.append(plain("INDIC", SDTMText.ascii(condition))) }
        if identity.conditions.isEmpty { rows.append(plain("INDIC", nil)) }
        rows.append(cdisc("INTMODEL", "INTMODEL", Self.interventionModel(identity.interventionModel)))
        let types = Array(Set(investigational.compactMap { Self.interventionType($0.type) })).sorted()
        for type in types { rows.append(cdisc("INTTYPE", "INTTYPE", type)) }
        if types.isEmpty { rows.append(plain("INTTYPE", nil)) }
        rows.append(iso("LENGTH", trialLength().map { "P\($0)D" }))
        rows.append(plain("NARMS", String(design.terminalArms.count)))
        rows.append(plain("OBJPRIM", nil))
        let primary = study.endpoints.filter { $0.kind == .primary }
        for endpoint in primary { rows.append(plain("OUTMSPRI", SDTMText.ascii(endpoint.measure), group: endpoint.code.uppercased())) }
        if primary.isEmpty { rows.append(plain("OUTMSPRI", nil)) }
        for endpoint in study.endpoints where endpoint.kind == .secondary {
            rows.append(plain("OUTMSSEC", SDTMText.ascii(endpoint.measure), group: endpoint.code.uppercased()))
        }
        rows.append(plain("PLANSUB", study.lifecycle.enrollment.target.map(String.init)))
        let randomized = identity.allocation.uppercased()
        rows.append(cdisc("RANDOM", "NY", randomized == "RANDOMIZED" ? "Y" : randomized == "NON_RANDOMIZED" || randomized == "NA" ? "N" : nil))
        if randomized == "RANDOMIZED", let quotient = randomizationQuotient() { rows.append(plain("RANDQT", quotient)) }
        for id in identity.registryIds {
            let nct = id.uppercased().hasPrefix("NCT")
            rows.append(Row(parm: "REGID", value: SDTMText.ascii(id), code: SDTMText.ascii(id), reference: nct ? "ClinicalTrials.gov" : nil))
        }
        if identity.registryIds.isEmpty { rows.append(plain("REGID", nil)) }
        rows.append(plain("SDTIGVER", "3.3"))
        rows.append(plain("SDTMVER", "1.7"))
        let status = study.lifecycle.operatingStatus
        if status == .completed || status == .withdrawn { rows.append(iso("SENDTC", study.lifecycle.dates.completion)) }
        rows.append(cdisc("SEXPOP", "SEXPOP", sexPopulation()))
        rows.append(plain("SPONSOR", SDTMText.ascii(identity.sponsor)))
        rows.append(iso("SSTDTC", study.lifecycle.dates.start))
        rows.append(plain("STOPRULE", nil))
        rows.append(cdisc("STYPE", "STYPE", Self.studyType(identity.studyType)))
        rows.append(cdisc("TBLIND", "TBLIND", Self.blinding(identity.masking)))
        rows.append(controlType())
        rows.append(plain("TDIGRP", identity.conditions.isEmpty ? nil : SDTMText.ascii(identity.conditions.joined(separator: "; "))))
        rows.append(cdisc("TINDTP", "TINDTP", Self.intent(identity.purpose)))
        rows.append(plain("TITLE", SDTMText.ascii(identity.title)))
        rows.append(cdisc("TPHASE", "TPHASE", Self.phase(identity.phase)))
        for product in investigational { rows.append(plain("TRT", SDTMText.ascii(product.name))) }
        if investigational.isEmpty { rows.append(plain("TRT", nil)) }
        rows.append(plain("TTYPE", nil))
        return rows
    }

    /// Rows in TS order, with values past 200 characters carried on in TSVAL1…TSVALn (SDTMIG 3.3 §7.4.2).
    func rows(studyID: String) -> [[XPORTValue]] {
        let all = allRows
        let pieces = all.map { Self.split($0.value ?? "") }
        let extra = (pieces.map(\.count).max() ?? 1) - 1
        var sequence: [String: Int] = [:]
        return zip(all, pieces).map { row, parts in
            sequence[row.parm, default: 0] += 1
            var values: [XPORTValue] = [
                .text(studyID), .text("TS"), .number(Double(sequence[row.parm] ?? 1)), .character(row.group.map(SDTMText.ascii)), .text(row.parm),
                .text(Self.names[row.parm] ?? row.parm),
            ]
            for index in 0...extra { values.append(.text(index < parts.count ? parts[index] : "")) }
            values += [.character(row.nullFlavor), .character(row.code), .character(row.reference), .character(row.version)]
            return values
        }
    }

    /// Pieces of at most 200 bytes (the text is ASCII by now), broken before a space where one falls in the last
    /// quarter: the next piece starts with it, since a transport file drops trailing blanks but keeps leading ones.
    static func split(_ text: String) -> [String] {
        var rest = Substring(text)
        var parts: [String] = []
        while rest.utf8.count > 200 {
            var cut = rest.index(rest.startIndex, offsetBy: 200)
            if let space = rest[rest.index(rest.startIndex, offsetBy: 150)..<cut].lastIndex(of: " ") { cut = space }
            parts.append(String(rest[..<cut]))
            rest = rest[cut...]
        }
        parts.append(String(rest))
        return parts
    }

    /// AGEMIN and AGEMAX from the inclusion criteria that compare `age_years(…)` with a number.
    func ageLimits() -> (min: Double?, max: Double?) {
        var low: Double?, high: Double?
        func isAge(_ e: TrialDomain.Expression) -> Bool { if case .call(let name, _) = e { return name == "age_years" } else { return false } }
        func value(_ e: TrialDomain.Expression) -> Double? {
            switch e {
            case .number(let n): n
            case .quantity(let n, _): n
            default: nil
            }
        }
        func walk(_ e: TrialDomain.Expression) {
            guard case .binary(let op, let l, let r) = e else { return }
            switch op {
            case .and: walk(l); walk(r)
            case .greaterOrEqual, .greater, .lessOrEqual, .less:
                // age >= n and n <= age are lower limits; age <= n and n >= age upper ones.
                if isAge(l), let n = value(r) {
                    if op == .greaterOrEqual || op == .greater { low = max(low ?? n, n) } else { high = min(high ?? n, n) }
                } else if isAge(r), let n = value(l) {
                    if op == .lessOrEqual || op == .less { low = max(low ?? n, n) } else { high = min(high ?? n, n) }
                }
            default: break
            }
        }
        for criterion in study.eligibility.inclusion {
            if let expression = try? ExpressionParser.parse(criterion.expression) { walk(expression) }
        }
        return (low, high)
    }

    /// BOTH unless a criterion compares the participant's sex field with a code.
    func sexPopulation() -> String? {
        guard let field = study.participant?.sex else { return "BOTH" }
        let criteria = study.eligibility.inclusion + study.eligibility.exclusion
        let reading = criteria.filter { (try? ExpressionParser.parse($0.expression))?.references.contains(field) == true }
        return reading.isEmpty ? "BOTH" : nil
    }

    /// Days from the earliest visit window's start to the latest one's end on the planned timeline.
    func trialLength() -> Int? {
        var first: Double?, last: Double?
        for visit in study.visits {
            guard let at = timeline.visits[visit.code] else { continue }
            let start = at - (visit.window?.before.seconds ?? 0), end = at + (visit.window?.after.seconds ?? 0)
            first = min(first ?? start, start)
            last = max(last ?? end, end)
        }
        guard let first, let last else { return nil }
        return Int(((last - first) / 86_400).rounded(.up))
    }

    /// The share of the enrolment randomization's ratio that goes to experimental arms.
    func randomizationQuotient() -> String? {
        let arms = study.arms.filter { $0.ratio > 0 }
        let total = arms.map(\.ratio).reduce(0, +)
        guard total > 0 else { return nil }
        let experimental = arms.filter { $0.type.uppercased() == "EXPERIMENTAL" }.map(\.ratio).reduce(0, +)
        return String(format: "%.2f", Double(experimental) / Double(total))
    }

    /// A no-treatment concurrent control has no term among the control types known here (PLACEBO, ACTIVE, NONE):
    /// it is given as OTH rather than guessed.
    func controlType() -> Row {
        let types = Set(study.arms.map { $0.type.uppercased() })
        if types.contains("PLACEBO_COMPARATOR") { return cdisc("TCNTRL", "TCNTRL", "PLACEBO") }
        if types.contains("ACTIVE_COMPARATOR") { return cdisc("TCNTRL", "TCNTRL", "ACTIVE") }
        if types.contains("NO_INTERVENTION") { return Row(parm: "TCNTRL", nullFlavor: "OTH") }
        return study.arms.count <= 1 ? cdisc("TCNTRL", "TCNTRL", "NONE") : Row(parm: "TCNTRL", nullFlavor: "NI")
    }

    /// Registry vocabulary (the definition's) to CDISC terms.
    static func phase(_ phase: String) -> String? {
        let map = [
            "EARLY_PHASE1": "PHASE 0 TRIAL", "PHASE0": "PHASE 0 TRIAL", "PHASE1": "PHASE I TRIAL", "PHASE1/PHASE2": "PHASE I/II TRIAL", "PHASE2": "PHASE II TRIAL",
            "PHASE2/PHASE3": "PHASE II/III TRIAL", "PHASE3": "PHASE III TRIAL", "PHASE4": "PHASE IV TRIAL", "NA": "NOT APPLICABLE",
        ]
        return map[phase.uppercased().replacingOccurrences(of: " ", with: "").replacingOccurrences(of: ",", with: "/")]
    }

    static func blinding(_ masking: String) -> String? {
        ["NONE": "OPEN LABEL", "SINGLE": "SINGLE BLIND", "DOUBLE": "DOUBLE BLIND", "TRIPLE": "TRIPLE BLIND", "QUADRUPLE": "QUADRUPLE BLIND"][masking.uppercased()]
    }

    static func studyType(_ type: String) -> String? {
        ["INTERVENTIONAL": "INTERVENTIONAL", "OBSERVATIONAL": "OBSERVATIONAL", "EXPANDED_ACCESS": "EXPANDED ACCESS"][type.uppercased()]
    }

    static func interventionModel(_ model: String) -> String? {
        ["PARALLEL": "PARALLEL", "CROSSOVER": "CROSS-OVER", "SINGLE_GROUP": "SINGLE GROUP", "FACTORIAL": "FACTORIAL", "SEQUENTIAL": "SEQUENTIAL"][model.uppercased()]
    }

    static func interventionType(_ type: String) -> String? {
        [
            "DRUG": "DRUG", "BIOLOGICAL": "BIOLOGIC", "DEVICE": "DEVICE", "PROCEDURE": "PROCEDURE", "RADIATION": "RADIATION", "BEHAVIORAL": "BEHAVIORAL",
            "DIETARY_SUPPLEMENT": "DIETARY SUPPLEMENT", "GENETIC": "GENETIC", "COMBINATION_PRODUCT": "COMBINATION PRODUCT",
        ][type.uppercased()]
    }

    static func intent(_ purpose: String) -> String? {
        [
            "TREATMENT": "TREATMENT", "PREVENTION": "PREVENTION", "DIAGNOSTIC": "DIAGNOSIS", "SCREENING": "SCREENING", "SUPPORTIVE_CARE": "MITIGATION",
            "HEALTH_SERVICES_RESEARCH": "HEALTH SERVICES RESEARCH", "BASIC_SCIENCE": "BASIC SCIENCE",
        ][purpose.uppercased()]
    }
}
