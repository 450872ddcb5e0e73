import Foundation
import TrialDomain

// HL7 FHIR R4 (4.0.1) export: one Bundle of type `collection` holding the study's ResearchStudy, and per participant a
// ResearchSubject, a pseudonymous Patient, an Observation per lab result, an AdverseEvent per adverse event and a
// MedicationAdministration per dose.
//
// Why `collection` and not `transaction`: the export is a set of resources gathered for distribution to an analyst or
// an archive, not a set of instructions for a server. A transaction needs a `request` (method and URL) in every entry
// and is processed atomically by a server that assigns ids; a collection is read as it is, and its urn:uuid fullUrls
// still resolve the references between its entries (http://hl7.org/fhir/R4/bundle.html#references).
//
// The writer streams: the bundle's JSON goes to the sink entry by entry, each entry encoded on its own, so memory holds
// one entry (and the sets of participant and dose ids written so far, to refuse dangling references). The output is
// deterministic: the keys of every object sorted, numbers in their shortest form, and every fullUrl a name-based
// (version 5) UUID of the deployment's base, the study and the record's own key.

/// A JSON value as the export writes it: sorted keys, no insignificant whitespace, UTF-8.
public enum FHIRJSON: Equatable, Sendable {
    case object([String: FHIRJSON])
    case array([FHIRJSON])
    case string(String)
    case number(Double)
    case integer(Int)
    case bool(Bool)

    /// The value's bytes: object keys in byte order of their UTF-8, nothing but the value.
    public func serialized() throws -> Data {
        var out: [UInt8] = []
        try write(into: &out)
        return Data(out)
    }

    /// Appends the value's bytes (a byte array, not Data: appending to Data byte by byte is several times slower).
    public func write(into out: inout [UInt8]) throws {
        switch self {
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: FHIRJSON.keyOrder).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                FHIRJSON.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                try members[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .string(let text): FHIRJSON.writeString(text, into: &out)
        case .number(let value): out.append(contentsOf: try FHIRJSON.number(value).utf8)
        case .integer(let value): out.append(contentsOf: String(value).utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        }
    }

    public struct NotANumber: Error, Equatable, Sendable {}

    /// The order of keys: by their UTF-8 bytes, so it does not depend on locale or Unicode collation.
    static func keyOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// A JSON number (RFC 8259 §6) for a FHIR decimal: integral values without a fraction, others in Swift's shortest
    /// form that reads back to the same Double. JSON has no NaN or infinity.
    static func number(_ value: Double) throws -> String {
        guard value.isFinite else { throw NotANumber() }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// A JSON string (RFC 8259 §7): quote, backslash and control characters escaped, everything else as UTF-8.
    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20: out.append(contentsOf: ("\\u00" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension FHIRJSON: Encodable {
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .object(let members):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in members { try container.encode(value, forKey: Key(key)) }
        case .array(let items):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .string(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .number(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .integer(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// UCUM codes for Casebook's unit strings.
/// Source: The Unified Code for Units of Measure (https://ucum.org/ucum, §§ 3–4: `u` micro, `10*` powers of ten,
/// `{…}` annotations, which are unity), as FHIR R4 requires for Quantity.code with system http://unitsofmeasure.org
/// (http://hl7.org/fhir/R4/datatypes.html#Quantity); "10*9/L" and "mmol/L" as in the R4 examples Bundle-ghp.json and
/// Observation-f001.json.
public enum UCUM {
    public static let system = "http://unitsofmeasure.org"

    public static let codes: [String: String] = [
        "umol/L": "umol/L",
        "µmol/L": "umol/L",  // U+00B5 micro sign
        "μmol/L": "umol/L",  // U+03BC Greek small mu
        "U/L": "U/L",
        "10^9/L": "10*9/L",
        "10^12/L": "10*12/L",
        // A ratio such as the INR has no unit: UCUM's unity with an annotation saying which.
        "ratio": "{ratio}",
        "%": "%",
        "mmol/L": "mmol/L",
        "g/L": "g/L",
        "g/dL": "g/dL",
        "mg/dL": "mg/dL",
        "ng/mL": "ng/mL",
        "mL": "mL",
        "kg": "kg",
        // Counts of cells or particles are unity with an annotation.
        "cells": "{cells}",
        "particles": "{particles}",
    ]

    public static func code(for unit: String) -> String? { codes[unit.trimmingCharacters(in: .whitespaces)] }
}

/// The code systems and codes the export uses, each with where it is defined.
enum FHIRTerms {
    static let loinc = "http://loinc.org"

    /// LOINC long common names of the catalogue's codes, as ../shared/reference/LOINC.md records them with their
    /// sources (the FHIR R4 example Bundle-ghp.json; US Core 3.0.0 for 1975-2 and 2160-0; 6301-6 from the secondary
    /// sources LOINC.md names). A code not listed is written without a display.
    static let loincDisplay: [String: String] = [
        "1920-8": "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "1742-6": "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "14631-6": "Bilirubin.total [Moles/volume] in Serum or Plasma",
        "1975-2": "Bilirub SerPl-mCnc",
        "2324-2": "Gamma glutamyl transferase [Enzymatic activity/volume] in Serum or Plasma",
        "14682-9": "Creatinine [Moles/volume] in Serum or Plasma",
        "2160-0": "Creat SerPl-mCnc",
        "2951-2": "Sodium [Moles/volume] in Serum or Plasma",
        "1751-7": "Albumin [Mass/volume] in Serum or Plasma",
        "777-3": "Platelets [#/volume] in Blood by Automated count",
        "6301-6": "INR in Platelet poor plasma by Coagulation assay",
    ]

    // http://hl7.org/fhir/R4/codesystem-research-study-phase.html
    static let phaseSystem = "http://terminology.hl7.org/CodeSystem/research-study-phase"
    static let phases: [String: (code: String, display: String)] = [
        "NA": ("n-a", "N/A"), "EARLYPHASE1": ("early-phase-1", "Early Phase 1"), "PHASE1": ("phase-1", "Phase 1"),
        "PHASE1PHASE2": ("phase-1-phase-2", "Phase 1/Phase 2"), "PHASE2": ("phase-2", "Phase 2"),
        "PHASE2PHASE3": ("phase-2-phase-3", "Phase 2/Phase 3"), "PHASE3": ("phase-3", "Phase 3"), "PHASE4": ("phase-4", "Phase 4"),
    ]

    // http://hl7.org/fhir/R4/codesystem-research-study-prim-purp-type.html
    static let purposeSystem = "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
    static let purposes: Set<String> = [
        "treatment", "prevention", "diagnostic", "supportive-care", "screening", "health-services-research", "basic-science", "device-feasibility",
    ]

    // http://hl7.org/fhir/R4/codesystem-observation-category.html
    static let observationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
    // http://hl7.org/fhir/R4/v3/ObservationInterpretation/cs.html
    static let interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    // http://hl7.org/fhir/R4/codesystem-adverse-event-seriousness.html (R4 4.0.1 codes, capitalised as there)
    static let seriousness = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
    // http://hl7.org/fhir/R4/codesystem-adverse-event-severity.html
    static let severity = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
    // http://hl7.org/fhir/R4/codesystem-adverse-event-outcome.html
    static let outcome = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
    // MedDRA's code system URI as HL7 Terminology registers it (https://terminology.hl7.org/CodeSystem-mdr.html).
    static let meddra = "https://www.meddra.org"
    // The CTCAE grade: AdverseEvent Clinical Research R4 Backport IG, extension ae-grade
    // (http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition-ae-grade.html), valued from the value set
    // adverse-event-clinical-research-grades, which holds these NCI Thesaurus concepts.
    static let gradeExtension = "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade"
    static let nciThesaurus = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
    static let grades: [Int: (code: String, display: String)] = [
        1: ("C41338", "Mild Adverse Event"), 2: ("C41339", "Moderate Adverse Event"), 3: ("C41340", "Severe Adverse Event"),
        4: ("C41337", "Life Threatening or Disabling Adverse Event"), 5: ("C48275", "Death Related to Adverse Event"),
    ]
    // Security labels (http://hl7.org/fhir/R4/security-labels.html): integrity observations from v3 ObservationValue.
    static let securityObservation = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
}

/// The mappings from Casebook's vocabularies to FHIR R4's, each with the spec page it follows.
public enum FHIRMapping {
    /// ResearchStudy.status from the sponsor's operating status (http://hl7.org/fhir/R4/codesystem-research-study-status.html).
    public static func studyStatus(_ status: OperatingStatus) -> String {
        switch status {
        // "Protocol is submitted to the review board for approval": the nearest to a study still being planned.
        case .planning: "in-review"
        // "Study is opened for accrual."
        case .recruiting: "active"
        // "Temporarily closed for accrual; can be potentially resumed; patients can be examined and treated."
        case .suspended: "temporarily-closed-to-accrual"
        // "Closed for accrual; patients can be examined and treated."
        case .closedToEnrolment: "closed-to-accrual"
        case .completed: "completed"
        // "Protocol was withdrawn by the lead organization."
        case .withdrawn: "withdrawn"
        }
    }

    /// ResearchSubject.status (http://hl7.org/fhir/R4/codesystem-research-subject-status.html). `registered`: the
    /// participant was allocated, which decides whether a withdrawal ended a participation or came before it.
    public static func subjectStatus(_ status: ParticipantStatus, registered: Bool) -> String {
        switch status {
        // "A person who is being evaluated for eligibility for a study."
        case .screening: "screening"
        // "Did not meet one or more criteria … is considered to have failed screening or is ineligible."
        case .screenFailed: "ineligible"
        case .eligible: "eligible"
        // Eligibility is being decided again: "A person that is potentially eligible for participation in the study."
        case .needsReview: "potential-candidate"
        // Consented, not yet allocated: "A person is pre-registered for a study."
        case .consented: "pending-on-study"
        // "A person that is enrolled or registered on a study."
        case .randomized: "on-study"
        // "withdrawn": "withdrawn their participation in the study before registration"; after it, "off-study": "ended
        // their participation … through … withdrawal".
        case .withdrawn: registered ? "off-study" : "withdrawn"
        // "Ended their participation on a study … because their treatment/observation is complete."
        case .completed: "off-study"
        }
    }

    /// ResearchStudy.phase from the registry vocabulary (EARLY_PHASE1, PHASE1/PHASE2, PHASE1_PHASE2, NA, …).
    static func phase(_ text: String) -> (code: String, display: String)? {
        FHIRTerms.phases[text.uppercased().filter { $0.isLetter || $0.isNumber }]
    }

    /// AdverseEvent.severity from the CTCAE grade: CTCAE's own words for grades 1–3 are mild, moderate and severe;
    /// R4's required value set (http://hl7.org/fhir/R4/valueset-adverse-event-severity.html) stops at severe, so 4
    /// and 5 are severe there and exact in the ae-grade extension.
    public static func severity(grade: Int) -> String? {
        switch grade {
        case 1: "mild"
        case 2: "moderate"
        case 3...5: "severe"
        default: nil
        }
    }

    /// AdverseEvent.seriousness code for one ICH E2A criterion (R4 4.0.1 AdverseEventSeriousness).
    public static func seriousness(_ criterion: Seriousness) -> (code: String, display: String) {
        switch criterion {
        case .death: ("SeriousResultsInDeath", "Results in death")
        case .lifeThreatening: ("SeriousIsLifeThreatening", "Is Life-threatening")
        case .hospitalization: ("SeriousResultsInHospitalization", "Requires or prolongs inpatient hospitalization")
        case .disability: ("SeriousResultsInDisability", "Results in persistent or significant disability/incapacity")
        case .congenitalAnomaly: ("SeriousIsBirthDefect", "Is a congenital anomaly/birth defect")
        // R4 defines it as "an important medical event that requires medical judgement".
        case .importantMedicalEvent: ("SeriousRequiresPreventImpairment", "Requires intervention to prevent permanent impairment")
        }
    }

    /// AdverseEvent.outcome (http://hl7.org/fhir/R4/codesystem-adverse-event-outcome.html, a required binding) from
    /// Casebook's outcome words (read as loosely as the SDTM export reads them, CDISC OUT terms included); anything else is
    /// `unknown`, with the words kept as the concept's text.
    public static func outcome(_ text: String) -> String {
        let key = String(text.lowercased().map { $0.isLetter ? $0 : "_" }).split(separator: "_").joined(separator: "_")
        switch key {
        case "recovered", "resolved", "recovered_resolved": return "resolved"
        case "recovering", "resolving", "recovering_resolving", "improving": return "recovering"
        case "not_recovered", "not_resolved", "ongoing", "not_recovered_not_resolved": return "ongoing"
        case "recovered_with_sequelae", "resolved_with_sequelae", "recovered_resolved_with_sequelae", "with_sequelae", "sequelae":
            return "resolvedWithSequelae"
        case "fatal", "death": return "fatal"
        default: return "unknown"
        }
    }

    static let outcomeDisplay = [
        "resolved": "Resolved", "recovering": "Recovering", "ongoing": "Ongoing", "resolvedWithSequelae": "Resolved with Sequelae", "fatal": "Fatal",
        "unknown": "Unknown",
    ]

    /// The registry an id belongs to, from its form: a ClinicalTrials.gov number is NCT and eight digits, a Chinese
    /// Clinical Trial Registry number starts ChiCTR. The system is the registry's own address.
    static func registry(of id: String) -> (system: String, name: String)? {
        if id.count == 11, id.hasPrefix("NCT"), id.dropFirst(3).allSatisfy(\.isASCII), id.dropFirst(3).allSatisfy(\.isNumber) {
            return ("https://clinicaltrials.gov", "ClinicalTrials.gov")
        }
        if id.hasPrefix("ChiCTR"), id.count > 6 { return ("https://www.chictr.org.cn", "Chinese Clinical Trial Registry") }
        return nil
    }
}

/// Builds each resource from the definition and a record.
struct FHIRResources {
    let study: StudyDefinition
    let options: FHIRExportOptions

    // MARK: ids

    /// The stable urn:uuid of a resource: version 5 UUID of the base, the study, the type and the record's key.
    func uuid(_ type: String, _ key: String) -> String {
        FHIRBundle.stableUUID("\(options.base)/\(study.code)/\(type)/\(key)").uuidString.lowercased()
    }

    func fullUrl(_ type: String, _ key: String) -> String { "urn:uuid:\(uuid(type, key))" }

    var studyURL: String { fullUrl("ResearchStudy", study.code) }
    func patientURL(_ subject: String) -> String { fullUrl("Patient", subject) }
    func doseURL(_ id: String) -> String { fullUrl("MedicationAdministration", id) }

    var subjectSystem: String { "\(options.base)/\(study.code)/subject" }

    // MARK: building blocks

    /// A FHIR dateTime in UTC to the second (http://hl7.org/fhir/R4/datatypes.html#dateTime). Worked out by arithmetic
    /// on the proleptic Gregorian calendar (days to civil date as in H. Hinnant's public-domain `civil_from_days`):
    /// Calendar is slow enough on Linux to dominate a large export.
    func dateTime(_ date: Date) -> FHIRJSON {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let time = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ n: Int, _ width: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return .string(
            "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(time / 3600, 2)):\(pad(time % 3600 / 60, 2)):\(pad(time % 60, 2))Z")
    }

    static func object(_ members: [String: FHIRJSON?]) -> FHIRJSON {
        .object(members.compactMapValues { value in
            switch value {
            case .none: nil
            case .some(.array(let items)) where items.isEmpty: nil
            case .some(let value): value
            }
        })
    }

    static func coding(_ system: String, _ code: String, _ display: String? = nil) -> FHIRJSON {
        object(["system": .string(system), "code": .string(code), "display": display.map(FHIRJSON.string)])
    }

    static func concept(_ codings: [FHIRJSON], text: String? = nil) -> FHIRJSON {
        object(["coding": .array(codings), "text": text.map(FHIRJSON.string)])
    }

    static func reference(_ url: String) -> FHIRJSON { .object(["reference": .string(url)]) }

    static func identifier(system: String?, value: String, use: String? = nil, assigner: String? = nil) -> FHIRJSON {
        object([
            "system": system.map(FHIRJSON.string), "value": .string(value), "use": use.map(FHIRJSON.string),
            "assigner": assigner.map { .object(["display": .string($0)]) },
        ])
    }

    func quantity(_ value: Double, unit: String, record: String) throws -> FHIRJSON {
        guard value.isFinite else { throw FHIRExportError.notANumber(record: record) }
        // qty-3: a code needs its system; a unit UCUM lacks here is written as text only.
        let code = UCUM.code(for: unit)
        return Self.object([
            "value": .number(value), "unit": .string(unit), "system": code.map { _ in .string(UCUM.system) }, "code": code.map(FHIRJSON.string),
        ])
    }

    static func security(_ code: String, _ display: String) -> FHIRJSON {
        .object(["security": .array([coding(FHIRTerms.securityObservation, code, display)])])
    }

    /// A FHIR date (yyyy, yyyy-MM or yyyy-MM-dd) from a definition's date; nil for anything else.
    static func date(_ text: String?) -> FHIRJSON? {
        guard let text else { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts[0].count == 4, parts.dropFirst().allSatisfy({ $0.count == 2 }),
            parts.allSatisfy({ $0.allSatisfy(\.isNumber) })
        else { return nil }
        return .string(text)
    }

    func arm(_ code: String?, subject: String) throws -> String? {
        guard let code else { return nil }
        guard let arm = study.arms.first(where: { $0.code == code }) else { throw FHIRExportError.unknownArm(subject: subject, arm: code) }
        return arm.name
    }

    // MARK: resources

    /// http://hl7.org/fhir/R4/researchstudy.html
    func researchStudy() -> FHIRJSON {
        let identity = study.identity
        var identifiers = [Self.identifier(system: "\(options.base)/study", value: study.code, use: "usual")]
        for id in identity.registryIds {
            if let registry = FHIRMapping.registry(of: id) {
                identifiers.append(Self.identifier(system: registry.system, value: id, use: "official", assigner: registry.name))
            } else {
                // A number whose issuer the definition does not say (a funder's grant number): the value alone.
                identifiers.append(Self.identifier(system: nil, value: id, use: "secondary"))
            }
        }
        let phase = FHIRMapping.phase(identity.phase)
        let purpose = identity.purpose.lowercased().replacingOccurrences(of: "_", with: "-")
        let operating = study.lifecycle.operatingStatus
        let reason = operating.needsReason ? study.lifecycle.operating?.last?.reason : nil
        let period = Self.object(["start": Self.date(study.lifecycle.dates.start), "end": Self.date(study.lifecycle.dates.completion)])
        return Self.object([
            "resourceType": .string("ResearchStudy"),
            "id": .string(uuid("ResearchStudy", study.code)),
            "identifier": .array(identifiers),
            "title": .string(identity.title),
            "status": .string(FHIRMapping.studyStatus(operating)),
            "phase": Self.concept(phase.map { [Self.coding(FHIRTerms.phaseSystem, $0.code, $0.display)] } ?? [], text: identity.phase),
            "primaryPurposeType": FHIRTerms.purposes.contains(purpose)
                ? Self.concept([Self.coding(FHIRTerms.purposeSystem, purpose)], text: identity.purpose) : nil,
            "condition": .array(identity.conditions.map { Self.concept([], text: $0) }),
            "description": identity.description.map(FHIRJSON.string),
            "period": period == .object([:]) ? nil : period,
            "sponsor": .object(["display": .string(identity.sponsor)]),
            "site": .array(study.sites.map { .object(["display": .string($0.name)]) }),
            "reasonStopped": reason.map { Self.concept([], text: $0) },
            // A blinded export names neither arms nor what the study gives.
            "focus": options.blinded ? nil : .array(study.interventions.map { Self.concept([], text: $0.name) }),
            "arm": options.blinded
                ? nil
                : .array(study.arms.map { arm in
                    Self.object([
                        "name": .string(arm.name), "type": Self.concept([], text: arm.type), "description": arm.description.map(FHIRJSON.string),
                    ])
                }),
        ])
    }

    /// http://hl7.org/fhir/R4/researchsubject.html
    func researchSubject(_ subject: FHIRSubject) throws -> FHIRJSON {
        let assigned = try arm(subject.assignedArm, subject: subject.subject)
        // The arm followed only where the store knows it (a later randomization stage): not assumed to be the one assigned.
        let actual = try arm(subject.actualArm, subject: subject.subject)
        let period = Self.object(["start": subject.start.map(dateTime), "end": subject.end.map(dateTime)])
        return Self.object([
            "resourceType": .string("ResearchSubject"),
            "id": .string(uuid("ResearchSubject", subject.subject)),
            "identifier": .array([Self.identifier(system: subjectSystem, value: subject.subject)]),
            "status": .string(FHIRMapping.subjectStatus(subject.status, registered: subject.assignedArm != nil)),
            "period": period == .object([:]) ? nil : period,
            "study": Self.reference(studyURL),
            "individual": Self.reference(patientURL(subject.subject)),
            "assignedArm": options.blinded ? nil : assigned.map(FHIRJSON.string),
            "actualArm": options.blinded ? nil : actual.map(FHIRJSON.string),
        ])
    }

    /// http://hl7.org/fhir/R4/patient.html: pseudonymous. The study subject id is the only identifier; no name,
    /// telecom or address; the birth date to the year only (a FHIR date may be yyyy, http://hl7.org/fhir/R4/datatypes.html#date).
    func patient(_ subject: FHIRSubject) -> FHIRJSON {
        Self.object([
            "resourceType": .string("Patient"),
            "id": .string(uuid("Patient", subject.subject)),
            "meta": Self.security("PSEUDED", "pseudonymized"),
            "identifier": .array([Self.identifier(system: subjectSystem, value: subject.subject)]),
            "gender": subject.sex.map { .string($0.rawValue) },
            "birthDate": subject.birthYear.flatMap { (1...9999).contains($0) ? .string(String(format: "%04d", $0)) : nil },
        ])
    }

    /// http://hl7.org/fhir/R4/observation.html, as a laboratory result (category `laboratory`, LOINC code).
    func observation(_ lab: FHIRLab) throws -> FHIRJSON {
        let record = "lab \(lab.id)"
        guard let test = study.labTest(lab.test) else { throw FHIRExportError.unknownLab(record: record, test: lab.test) }
        let unit = lab.unit ?? test.unit
        var codings: [FHIRJSON] = []
        if let loinc = test.loinc { codings.append(Self.coding(FHIRTerms.loinc, loinc, FHIRTerms.loincDisplay[loinc])) }
        codings.append(Self.coding("\(options.base)/CodeSystem/lab", test.code, test.name))
        var range: [String: FHIRJSON?] = [:]
        if let low = lab.low { range["low"] = try quantity(low, unit: unit, record: record) }
        if let high = lab.high { range["high"] = try quantity(high, unit: unit, record: record) }
        // H/L/N against the range in force (http://hl7.org/fhir/R4/v3/ObservationInterpretation/cs.html); none without a range.
        var interpretation: (String, String)?
        if let high = lab.high, lab.value > high {
            interpretation = ("H", "High")
        } else if let low = lab.low, lab.value < low {
            interpretation = ("L", "Low")
        } else if !range.isEmpty {
            interpretation = ("N", "Normal")
        }
        return Self.object([
            "resourceType": .string("Observation"),
            "id": .string(uuid("Observation", lab.id)),
            "status": .string(lab.status.rawValue),
            "category": .array([
                Self.concept([Self.coding(FHIRTerms.observationCategory, "laboratory", "Laboratory")])
            ]),
            "code": Self.concept(codings, text: test.name),
            "subject": Self.reference(patientURL(lab.subject)),
            "effectiveDateTime": dateTime(lab.collectedAt),
            "valueQuantity": try quantity(lab.value, unit: unit, record: record),
            "interpretation": interpretation.map { .array([Self.concept([Self.coding(FHIRTerms.interpretation, $0.0, $0.1)])]) },
            "referenceRange": range.isEmpty ? nil : .array([Self.object(range)]),
        ])
    }

    /// http://hl7.org/fhir/R4/adverseevent.html
    func adverseEvent(_ event: FHIRAdverseEvent) -> FHIRJSON {
        let meddra = event.meddra.flatMap { $0.isEmpty ? nil : Self.coding(FHIRTerms.meddra, $0, event.term) }
        let seriousness: FHIRJSON
        if !event.serious {
            seriousness = Self.concept([Self.coding(FHIRTerms.seriousness, "Non-serious", "Non-serious")])
        } else if event.seriousness.count == 1, let only = event.seriousness.first {
            let code = FHIRMapping.seriousness(only)
            seriousness = Self.concept([Self.coding(FHIRTerms.seriousness, code.code, code.display)])
        } else {
            // One concept holds one meaning: with several criteria (or none recorded), Serious, and the criteria as text.
            let criteria = event.seriousness.map { FHIRMapping.seriousness($0).display }
            seriousness = Self.concept(
                [Self.coding(FHIRTerms.seriousness, "Serious", "Serious")], text: criteria.isEmpty ? nil : criteria.joined(separator: "; "))
        }
        let grade = event.grade.flatMap { g in FHIRTerms.grades[g].map { (g, $0) } }
        let gradeText = grade.map { g in "CTCAE\(event.ctcaeVersion.map { " v\($0)" } ?? "") grade \(g.0)" }
        let severity = event.grade.flatMap(FHIRMapping.severity)
        let outcome = event.outcome.map { text -> FHIRJSON in
            let code = FHIRMapping.outcome(text)
            return Self.concept([Self.coding(FHIRTerms.outcome, code, FHIRMapping.outcomeDisplay[code])], text: text)
        }
        let causality: FHIRJSON? = event.attribution.map { attribution in
            let display = attribution.rawValue.prefix(1).uppercased() + attribution.rawValue.dropFirst()
            // The investigator's attribution on Casebook's five-step scale, kept as its own code: it is not the WHO-UMC
            // scale of R4's example value set (http://hl7.org/fhir/R4/valueset-adverse-event-causality-assess.html).
            return .array([
                .object([
                    "assessment": Self.concept(
                        [Self.coding("\(options.base)/CodeSystem/attribution", attribution.rawValue, display)], text: display)
                ])
            ])
        }
        var suspects: [FHIRJSON] = event.suspectDoses.map { dose in
            Self.object(["instance": Self.reference(doseURL(dose)), "causality": causality])
        }
        if suspects.isEmpty, let causality {
            // Attributed to the study intervention as a whole: a reference by description only (ref-1 allows display).
            let what = options.blinded ? options.maskedProduct : "Study intervention"
            suspects = [.object(["instance": .object(["display": .string(what)]), "causality": causality])]
        }
        return Self.object([
            "resourceType": .string("AdverseEvent"),
            "id": .string(uuid("AdverseEvent", event.id)),
            "actuality": .string("actual"),
            "event": Self.concept(meddra.map { [$0] } ?? [], text: event.term),
            "subject": Self.reference(patientURL(event.subject)),
            "date": dateTime(event.onsetAt),
            "detected": event.awareAt.map(dateTime),
            "recordedDate": event.recordedAt.map(dateTime),
            "seriousness": seriousness,
            "severity": severity.map { Self.concept([Self.coding(FHIRTerms.severity, $0, $0.prefix(1).uppercased() + $0.dropFirst())]) },
            "extension": grade.map { g in
                .array([
                    .object([
                        "url": .string(FHIRTerms.gradeExtension),
                        "valueCodeableConcept": Self.concept([Self.coding(FHIRTerms.nciThesaurus, g.1.code, g.1.display)], text: gradeText),
                    ])
                ])
            },
            "outcome": outcome,
            "suspectEntity": .array(suspects),
            "study": .array([Self.reference(studyURL)]),
        ])
    }

    /// http://hl7.org/fhir/R4/medicationadministration.html
    func medicationAdministration(_ dose: FHIRDose) throws -> FHIRJSON {
        guard let product = study.interventions.first(where: { $0.code == dose.product }) else {
            throw FHIRExportError.unknownProduct(record: "dose \(dose.id)", product: dose.product)
        }
        let masked = options.blinded
        var dosage: FHIRJSON?
        if !masked && dose.given {
            var text: String?
            if let amount = dose.amount, let unit = dose.unit {
                text = Dose(amount: amount, unit: unit, volume: dose.volume, volumeUnit: dose.volumeUnit).summary
            }
            dosage = Self.object([
                "text": text.map(FHIRJSON.string),
                "route": dose.route.map { Self.concept([], text: $0) },
                "dose": try dose.amount.flatMap { amount in try dose.unit.map { try quantity(amount, unit: $0, record: "dose \(dose.id)") } },
            ])
            if dosage == .object([:]) { dosage = nil }
        }
        return Self.object([
            "resourceType": .string("MedicationAdministration"),
            "id": .string(uuid("MedicationAdministration", dose.id)),
            "meta": masked ? Self.security("MASKED", "masked") : nil,
            "identifier": .array([Self.identifier(system: "\(options.base)/\(study.code)/dose", value: "\(dose.subject)/\(dose.dose)")]),
            "status": .string(dose.given ? "completed" : "not-done"),
            "statusReason": dose.given ? nil : dose.skipReason.map { .array([Self.concept([], text: $0)]) },
            "medicationCodeableConcept": Self.concept([], text: masked ? options.maskedProduct : product.name),
            "subject": Self.reference(patientURL(dose.subject)),
            "effectivePeriod": Self.object(["start": dateTime(dose.start), "end": dose.end.map(dateTime)]),
            "dosage": dosage,
        ])
    }

    static func entry(_ fullUrl: String, _ resource: FHIRJSON) -> FHIRJSON {
        .object(["fullUrl": .string(fullUrl), "resource": resource])
    }

    /// The bundle's own members besides `entry`.
    func envelope() -> [String: FHIRJSON] {
        var members: [String: FHIRJSON] = [
            "resourceType": .string("Bundle"),
            "id": .string(uuid("Bundle", options.blinded ? "blinded" : "unblinded")),
            "type": .string("collection"),
        ]
        if let timestamp = options.timestamp { members["timestamp"] = dateTime(timestamp) }
        return members
    }
}

/// Writes a FHIR R4 `collection` Bundle to a byte sink, entry by entry.
///
/// Order: `add` each participant before their labs, adverse events and doses, and a dose before an adverse event that
/// names it as suspect; the ResearchStudy comes first by itself. `finish()` closes the bundle.
public struct FHIRBundleWriter {
    public typealias Sink = (Data) throws -> Void

    private let resources: FHIRResources
    private let sink: Sink
    private var started = false
    private var finished = false
    private var entries = 0
    private var subjects: Set<String> = []
    private var doses: Set<String> = []
    /// Resources written, by type.
    public private(set) var counts: [String: Int] = [:]

    public init(study: StudyDefinition, options: FHIRExportOptions, sink: @escaping Sink) {
        resources = FHIRResources(study: study, options: options)
        self.sink = sink
    }

    public init(study: StudyDefinition, options: FHIRExportOptions, fileHandle: FileHandle) {
        self.init(study: study, options: options) { try fileHandle.write(contentsOf: $0) }
    }

    /// Opens the bundle and writes the ResearchStudy (done by the first `add` when not called).
    public mutating func begin() throws {
        guard !started else { return }
        guard !finished else { throw FHIRExportError.finished }
        started = true
        // Sorted keys put "entry" before every other member of the bundle, so the entries come first.
        try sink(Data(#"{"entry":["#.utf8))
        try write(resources.studyURL, resources.researchStudy())
    }

    public mutating func add(_ subject: FHIRSubject) throws {
        try begin()
        guard !subjects.contains(subject.subject) else { throw FHIRExportError.duplicate("participant \(subject.subject)") }
        // Both built before either is written: a record refused leaves no half of it in the bundle.
        let researchSubject = try resources.researchSubject(subject), patient = resources.patient(subject)
        try write(resources.fullUrl("ResearchSubject", subject.subject), researchSubject)
        try write(resources.patientURL(subject.subject), patient)
        subjects.insert(subject.subject)
    }

    public mutating func add(_ lab: FHIRLab) throws {
        try begin()
        try requireSubject(lab.subject, record: "lab \(lab.id)")
        try write(resources.fullUrl("Observation", lab.id), try resources.observation(lab))
    }

    public mutating func add(_ dose: FHIRDose) throws {
        try begin()
        try requireSubject(dose.subject, record: "dose \(dose.id)")
        guard !doses.contains(dose.id) else { throw FHIRExportError.duplicate("dose \(dose.id)") }
        try write(resources.doseURL(dose.id), try resources.medicationAdministration(dose))
        doses.insert(dose.id)
    }

    public mutating func add(_ event: FHIRAdverseEvent) throws {
        try begin()
        try requireSubject(event.subject, record: "adverse event \(event.id)")
        for dose in event.suspectDoses where !doses.contains(dose) {
            throw FHIRExportError.unknownReference(record: "adverse event \(event.id)", reference: dose)
        }
        try write(resources.fullUrl("AdverseEvent", event.id), resources.adverseEvent(event))
    }

    /// Closes the bundle; nothing may be added after.
    public mutating func finish() throws {
        guard !finished else { throw FHIRExportError.finished }
        try begin()
        finished = true
        var tail = try FHIRJSON.object(resources.envelope()).serialized()
        tail.removeFirst()  // its "{": the members follow the entries
        try sink(Data("],".utf8) + tail)
    }

    private func requireSubject(_ subject: String, record: String) throws {
        guard subjects.contains(subject) else { throw FHIRExportError.unknownReference(record: record, reference: subject) }
    }

    private mutating func write(_ fullUrl: String, _ resource: FHIRJSON) throws {
        guard !finished else { throw FHIRExportError.finished }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2048)
        if entries > 0 { bytes.append(UInt8(ascii: ",")) }
        try FHIRResources.entry(fullUrl, resource).write(into: &bytes)
        try sink(Data(bytes))
        entries += 1
        if case .object(let members) = resource, case .string(let type)? = members["resourceType"] { counts[type, default: 0] += 1 }
    }
}

public enum FHIRBundle {
    /// Streams a whole export: the study, then per participant in the order given; doses before adverse events.
    public static func write(
        study: StudyDefinition, options: FHIRExportOptions, subjects: some Sequence<FHIRSubject>, doses: some Sequence<FHIRDose>,
        labs: some Sequence<FHIRLab>, events: some Sequence<FHIRAdverseEvent>, to sink: @escaping FHIRBundleWriter.Sink
    ) throws -> [String: Int] {
        var writer = FHIRBundleWriter(study: study, options: options, sink: sink)
        try writer.begin()
        for subject in subjects { try writer.add(subject) }
        for dose in doses { try writer.add(dose) }
        for lab in labs { try writer.add(lab) }
        for event in events { try writer.add(event) }
        try writer.finish()
        return writer.counts
    }

    /// The same bundle as one JSON value, built whole in memory: for small exports and to check the writer against.
    public static func document(
        study: StudyDefinition, options: FHIRExportOptions, subjects: [FHIRSubject], doses: [FHIRDose], labs: [FHIRLab],
        events: [FHIRAdverseEvent]
    ) throws -> FHIRJSON {
        let r = FHIRResources(study: study, options: options)
        var entries = [FHIRResources.entry(r.studyURL, r.researchStudy())]
        for s in subjects {
            entries.append(FHIRResources.entry(r.fullUrl("ResearchSubject", s.subject), try r.researchSubject(s)))
            entries.append(FHIRResources.entry(r.patientURL(s.subject), r.patient(s)))
        }
        for d in doses { entries.append(FHIRResources.entry(r.doseURL(d.id), try r.medicationAdministration(d))) }
        for l in labs { entries.append(FHIRResources.entry(r.fullUrl("Observation", l.id), try r.observation(l))) }
        for e in events { entries.append(FHIRResources.entry(r.fullUrl("AdverseEvent", e.id), r.adverseEvent(e))) }
        var members = r.envelope()
        members["entry"] = .array(entries)
        return .object(members)
    }

    /// The ResearchStudy of a definition alone.
    public static func researchStudy(_ study: StudyDefinition, options: FHIRExportOptions) -> FHIRJSON {
        FHIRResources(study: study, options: options).researchStudy()
    }

    /// RFC 4122 name-space for URLs (RFC 9562 appendix A), under which the export's names are hashed.
    public static let urlNamespace = UUID(uuidString: "6ba7b811-9dad-11d1-80b4-00c04fd430c8")!

    /// A name-based UUID, version 5 (SHA-1), as RFC 9562 §5.5 defines it: the same name always gives the same UUID.
    public static func stableUUID(_ name: String, namespace: UUID = urlNamespace) -> UUID {
        let ns = namespace.uuid
        let nsBytes = [ns.0, ns.1, ns.2, ns.3, ns.4, ns.5, ns.6, ns.7, ns.8, ns.9, ns.10, ns.11, ns.12, ns.13, ns.14, ns.15]
        var b = SHA1.hash(nsBytes + Array(name.utf8))
        b[6] = (b[6] & 0x0F) | 0x50  // version 5
        b[8] = (b[8] & 0x3F) | 0x80  // variant 10
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// SHA-1 (FIPS 180-4 §6.1), used only for name-based UUIDs: Foundation on Linux has no digest, and TrialStandards
/// depends on nothing that does.
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var m = message
        let bits = UInt64(message.count) * 8
        m.append(0x80)
        while m.count % 64 != 56 { m.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { m.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: m.count, by: 64) {
            for i in 0..<16 {
                let j = chunk + 4 * i
                w[i] = UInt32(m[j]) << 24 | UInt32(m[j + 1]) << 16 | UInt32(m[j + 2]) << 8 | UInt32(m[j + 3])
            }
            for i in 16..<80 { w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let f: UInt32, k: UInt32
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let t = rotl(a, 5) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, rotl(b, 30), a, t)
            }
            h[0] &+= a
            h[1] &+= b
            h[2] &+= c
            h[3] &+= d
            h[4] &+= e
        }
        return h.flatMap { v in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> UInt32($0)) } }
    }

    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { x << n | x >> (32 - n) }
}
