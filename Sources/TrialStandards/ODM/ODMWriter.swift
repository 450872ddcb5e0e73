import Foundation
import TrialDomain

// CDISC ODM 1.3.2 export, written as a stream: the metadata and admin data first, then one SubjectData at a time, so a
// study of any size is exported in the memory of one subject. Section numbers (§) are those of the ODM 1.3.2
// specification (../shared/reference/xsd/odm-1.3.2/ODM1-3-2-Final.htm); element order is the schema's (ODM1-3-2-foundation.xsd).
//
// Choices the standard leaves open, made here:
// - Snapshot file (§2.8 FileType: "only one instruction per data point"): one ItemData per value, holding the value as it is now. An ItemData carries at most
//   one AuditRecord (§3.1.4.1.1.1.1.1), so each value carries the audit event that gave it its current value (the one
//   with the highest sequence); its earlier history needs a Transactional file.
// - A SubjectData or FormData carries at most one Signature (§3.1.4.1, §3.1.4.1.1.1): of the signatures in force on it,
//   the latest is written.
// - Lab results are a Casebook form of their own (CB.F.LB, on every visit) with one repeating LB item group per result,
//   keyed by the test code, rather than the lab fields of a study's form: results are kept apart from forms, a visit may
//   hold tests no form lists, and a result keeps the unit it was entered in beside its canonical value.
// - ODM has no arm element (§3.1.4): the arm is an item of a Casebook "Common" study event (CB.SE.ARM); a blinded export
//   leaves out that event with its form, items and code list, and every subject's arm.
// - OIDs: study-defined things are KIND.code (SE., F., IG., I.form.field, CL.form.field, MU., USR., LOC., SD.);
//   Casebook's own are CB.KIND.NAME, so the two never meet. Every OID in the file is unique (§2.11), which the writer checks.

/// The OIDs the export gives each thing.
public enum ODMOID {
    public static func study(_ study: StudyDefinition) -> String { "S.\(study.code)" }
    /// The definition's version is part of it: a new version of the definition is a new MetaDataVersion (§3.1.1.3).
    public static func metaDataVersion(_ study: StudyDefinition) -> String { "MDV.\(study.code).v\(study.version)" }
    public static func studyEvent(_ visit: String) -> String { "SE.\(visit)" }
    public static func form(_ form: String) -> String { "F.\(form)" }
    public static func itemGroup(_ form: String) -> String { "IG.\(form)" }
    public static func item(form: String, field: String) -> String { "I.\(form).\(field)" }
    /// A choice field's code list; fields with the same choices share the first one's.
    public static func codeList(form: String, field: String) -> String { "CL.\(form).\(field)" }
    public static func unit(_ unit: String) -> String { "MU.\(unit)" }
    public static func user(_ name: String) -> String { "USR.\(name)" }
    public static func location(_ site: String) -> String { "LOC.\(site)" }
    public static func signature(_ meaning: String) -> String { "SD.\(meaning)" }

    public static let yesNoCodeList = "CB.CL.YESNO"
    public static let labForm = "CB.F.LB"
    public static let labItemGroup = "CB.IG.LB"
    public static let labTestCodeList = "CB.CL.LBTESTCD"
    public static let armEvent = "CB.SE.ARM"
    public static let armForm = "CB.F.ARM"
    public static let armItemGroup = "CB.IG.ARM"
    public static let armCodeList = "CB.CL.ARMCD"
    public static func casebookItem(_ name: String) -> String { "CB.I.\(name)" }
}

/// Writes one ODM 1.3.2 document (FileType Snapshot, Granularity All) to a byte sink: `start()`, then `write(_:)` for
/// each subject, then `finish()`. Output is deterministic: the same input gives the same bytes, whatever order the
/// records' dictionaries and arrays come in.
public final class ODMWriter {
    public typealias Sink = ([UInt8]) throws -> Void

    public let study: StudyDefinition
    public let administration: ODMAdministration
    public let options: ODMOptions
    private let sink: Sink
    private let plan: ODMPlan
    private var out = ODMXMLBuffer()
    private var started = false
    private var finished = false
    private var keys: Set<String> = []
    /// Signatures written so far, for their document-unique IDs.
    private var signatureCount = 0

    /// Checks the administration data and the definition's OIDs; writes nothing yet.
    public init(study: StudyDefinition, administration: ODMAdministration, options: ODMOptions, sink: @escaping Sink) throws {
        self.study = study
        self.administration = administration
        self.options = options
        self.sink = sink
        plan = try ODMPlan(study: study, administration: administration, options: options)
    }

    public convenience init(study: StudyDefinition, administration: ODMAdministration, options: ODMOptions, fileHandle: FileHandle) throws {
        try self.init(study: study, administration: administration, options: options) { bytes in try fileHandle.write(contentsOf: Data(bytes)) }
    }

    /// The whole document in memory, through the same writer: for small exports and tests.
    public static func document(
        study: StudyDefinition, administration: ODMAdministration, options: ODMOptions, subjects: some Sequence<ODMSubject>
    ) throws -> Data {
        var data = Data()
        let writer = try ODMWriter(study: study, administration: administration, options: options) { data.append(contentsOf: $0) }
        try writer.start()
        for subject in subjects { try writer.write(subject) }
        try writer.finish()
        return data
    }

    /// The prolog, Study, AdminData and the opening of ClinicalData. `write(_:)` calls it when not yet called.
    public func start() throws {
        guard !finished else { throw ODMError.finished }
        guard !started else { return }
        do {
            out.declaration()
            try writeRoot()
            try writeStudy()
            try writeAdminData()
            // §3.1.4: one ClinicalData for every subject, against the one MetaDataVersion written above.
            try out.open("ClinicalData", [("StudyOID", plan.studyOID), ("MetaDataVersionOID", plan.mdvOID)])
        } catch {
            out = ODMXMLBuffer()
            throw error
        }
        started = true
        try flush(force: false)
    }

    /// One subject's SubjectData. On an error nothing of the subject is written and the document stays whole.
    public func write(_ subject: ODMSubject) throws {
        try start()
        let mark = out.bytes.count, depth = out.depth, signatures = signatureCount
        do {
            try writeSubject(subject)
        } catch {
            out.bytes.removeSubrange(mark...)
            out.depth = depth
            signatureCount = signatures
            throw error
        }
        keys.insert(subject.key)
        try flush(force: false)
    }

    /// Closes the document and hands the rest to the sink.
    public func finish() throws {
        try start()
        guard !finished else { throw ODMError.finished }
        out.close("ClinicalData")
        out.close("ODM")
        finished = true
        try flush(force: true)
    }

    private func flush(force: Bool) throws {
        guard !out.bytes.isEmpty, force || out.bytes.count >= options.flushThreshold else { return }
        try sink(out.bytes)
        out.bytes.removeAll(keepingCapacity: true)
    }

    // MARK: Document, study and metadata

    private func writeRoot() throws {
        // §3.1 ODM: a Snapshot of the whole study; ODMVersion must say 1.3.2 to use its features.
        try out.open(
            "ODM",
            [
                ("xmlns", "http://www.cdisc.org/ns/odm/v1.3"), ("ODMVersion", "1.3.2"), ("FileType", "Snapshot"), ("Granularity", "All"),
                ("FileOID", options.fileOID), ("CreationDateTime", AuditEntry.timestamp(options.createdAt)),
                ("AsOfDateTime", options.asOf.map(AuditEntry.timestamp)), ("Originator", options.originator), ("SourceSystem", options.sourceSystem),
                ("SourceSystemVersion", options.sourceSystemVersion),
                ("Description", options.blinded ? "Blinded: arms are left out" : nil),
            ])
    }

    private func writeStudy() throws {
        let identity = study.identity
        try out.open("Study", [("OID", plan.studyOID)])
        // §3.1.1.1 GlobalVariables: short external name, free-text description, the sponsor's name for the protocol.
        try out.open("GlobalVariables")
        try out.leaf("StudyName", text: identity.shortTitle)
        try out.leaf("StudyDescription", text: identity.description.map { "\(identity.title). \($0)" } ?? identity.title)
        try out.leaf("ProtocolName", text: study.code)
        out.close("GlobalVariables")
        // §3.1.1.2 BasicDefinitions: every unit a field or a lab's canonical value is in.
        if !plan.units.isEmpty {
            try out.open("BasicDefinitions")
            for unit in plan.units {
                try out.open("MeasurementUnit", [("OID", ODMOID.unit(unit)), ("Name", unit)])
                try translated("Symbol", unit)
                out.close("MeasurementUnit")
            }
            out.close("BasicDefinitions")
        }
        try out.open(
            "MetaDataVersion",
            [("OID", plan.mdvOID), ("Name", "\(study.code) version \(study.version)"), ("Description", "\(identity.title), definition version \(study.version)")])
        try writeProtocol()
        try writeStudyEventDefs()
        try writeFormDefs()
        try writeItemGroupDefs()
        try writeItemDefs()
        try writeCodeLists()
        out.close("MetaDataVersion")
        out.close("Study")
    }

    private func writeProtocol() throws {
        // §3.1.1.3.2: the kinds of study events; a visit only some arms have is not mandatory.
        try out.open("Protocol")
        for (index, visit) in study.visits.enumerated() {
            try out.empty(
                "StudyEventRef", [("StudyEventOID", ODMOID.studyEvent(visit.code)), ("OrderNumber", "\(index + 1)"), ("Mandatory", visit.arms == nil ? "Yes" : "No")])
        }
        if !options.blinded {
            try out.empty("StudyEventRef", [("StudyEventOID", ODMOID.armEvent), ("OrderNumber", "\(study.visits.count + 1)"), ("Mandatory", "No")])
        }
        out.close("Protocol")
    }

    private func writeStudyEventDefs() throws {
        // §3.1.1.3.3: one non-repeating scheduled event per visit, with the forms the definition collects at it and the
        // lab form, which any visit may hold.
        for visit in study.visits {
            try out.open("StudyEventDef", [("OID", ODMOID.studyEvent(visit.code)), ("Name", visit.name), ("Repeating", "No"), ("Type", "Scheduled")])
            var order = 0
            for form in study.forms where form.visits.contains(visit.code) {
                order += 1
                try out.empty("FormRef", [("FormOID", ODMOID.form(form.code)), ("OrderNumber", "\(order)"), ("Mandatory", "Yes")])
            }
            try out.empty("FormRef", [("FormOID", ODMOID.labForm), ("OrderNumber", "\(order + 1)"), ("Mandatory", "No")])
            out.close("StudyEventDef")
        }
        if !options.blinded {
            // "Common": not tied to the schedule (§3.1.1.3.3 Type).
            try out.open("StudyEventDef", [("OID", ODMOID.armEvent), ("Name", "Allocation"), ("Repeating", "No"), ("Type", "Common")])
            try out.empty("FormRef", [("FormOID", ODMOID.armForm), ("OrderNumber", "1"), ("Mandatory", "Yes")])
            out.close("StudyEventDef")
        }
    }

    private func writeFormDefs() throws {
        // §3.1.1.3.4: one form, one item group (a Casebook form is one record of fields).
        for form in study.forms {
            try out.open("FormDef", [("OID", ODMOID.form(form.code)), ("Name", form.name), ("Repeating", "No")])
            try out.empty("ItemGroupRef", [("ItemGroupOID", ODMOID.itemGroup(form.code)), ("OrderNumber", "1"), ("Mandatory", "Yes")])
            out.close("FormDef")
        }
        try out.open("FormDef", [("OID", ODMOID.labForm), ("Name", "Laboratory results"), ("Repeating", "No")])
        try out.empty("ItemGroupRef", [("ItemGroupOID", ODMOID.labItemGroup), ("OrderNumber", "1"), ("Mandatory", "Yes")])
        out.close("FormDef")
        if !options.blinded {
            try out.open("FormDef", [("OID", ODMOID.armForm), ("Name", "Allocation"), ("Repeating", "No")])
            try out.empty("ItemGroupRef", [("ItemGroupOID", ODMOID.armItemGroup), ("OrderNumber", "1"), ("Mandatory", "Yes")])
            out.close("FormDef")
        }
    }

    private func writeItemGroupDefs() throws {
        // §3.1.1.3.5; Mandatory follows the field's `required`.
        for form in study.forms {
            try out.open("ItemGroupDef", [("OID", ODMOID.itemGroup(form.code)), ("Name", form.code), ("Repeating", "No")])
            for (index, field) in form.fields.enumerated() {
                try out.empty(
                    "ItemRef",
                    [("ItemOID", ODMOID.item(form: form.code, field: field.code)), ("OrderNumber", "\(index + 1)"), ("Mandatory", field.isRequired ? "Yes" : "No")])
            }
            out.close("ItemGroupDef")
        }
        // One record per result, repeating, keyed by the test code (ItemGroupRepeatKey and KeySequence 1).
        try out.open(
            "ItemGroupDef",
            [("OID", ODMOID.labItemGroup), ("Name", "LB"), ("Repeating", "Yes"), ("SASDatasetName", "LB"), ("Domain", "LB"), ("Purpose", "Tabulation")])
        for (index, item) in ODMLabItem.allCases.enumerated() {
            try out.empty(
                "ItemRef",
                [("ItemOID", ODMOID.casebookItem(item.rawValue)), ("KeySequence", item == .LBTESTCD ? "1" : nil), ("OrderNumber", "\(index + 1)"),
                 ("Mandatory", item == .LBTOXGR ? "No" : "Yes")])
        }
        out.close("ItemGroupDef")
        if !options.blinded {
            try out.open("ItemGroupDef", [("OID", ODMOID.armItemGroup), ("Name", "ARM"), ("Repeating", "No")])
            for (index, item) in ODMArmItem.allCases.enumerated() {
                try out.empty(
                    "ItemRef", [("ItemOID", ODMOID.casebookItem(item.rawValue)), ("OrderNumber", "\(index + 1)"), ("Mandatory", item == .ARMCD ? "Yes" : "No")])
            }
            out.close("ItemGroupDef")
        }
    }

    private func writeItemDefs() throws {
        for form in study.forms {
            for field in form.fields { try writeItemDef(form: form, field: field) }
        }
        for item in ODMLabItem.allCases {
            try out.open(
                "ItemDef",
                [("OID", ODMOID.casebookItem(item.rawValue)), ("Name", item.rawValue), ("DataType", item.dataType), ("Length", item.length(plan).map(String.init)),
                 ("SDSVarName", item.rawValue)])
            try translated("Question", item.question(study))
            if item == .LBSTRESN {
                // §3.1.1.3.6: the units a value may be in; each ItemData names its own.
                for unit in plan.labUnits { try out.empty("MeasurementUnitRef", [("MeasurementUnitOID", ODMOID.unit(unit))]) }
            }
            if item == .LBTESTCD { try out.empty("CodeListRef", [("CodeListOID", ODMOID.labTestCodeList)]) }
            out.close("ItemDef")
        }
        if !options.blinded {
            for item in ODMArmItem.allCases {
                try out.open(
                    "ItemDef",
                    [("OID", ODMOID.casebookItem(item.rawValue)), ("Name", item.rawValue), ("DataType", item.dataType), ("Length", item == .ARMCD ? "\(plan.armLength)" : nil),
                     ("SDSVarName", item == .ARMCD ? item.rawValue : nil)])
                try translated("Question", item.question)
                if item == .ARMCD { try out.empty("CodeListRef", [("CodeListOID", ODMOID.armCodeList)]) }
                out.close("ItemDef")
            }
        }
    }

    private func writeItemDef(form: Form, field: Field) throws {
        let item = plan.items[form.code]![field.code]!
        // §3.1.1.3.6: Length is required for text and not given for dates; only numeric items have units.
        try out.open(
            "ItemDef",
            [("OID", item.oid), ("Name", field.code), ("DataType", item.dataType), ("Length", item.length.map(String.init))])
        try translated("Question", field.label)
        let unitOID = item.numeric ? field.unit.map(ODMOID.unit) : nil
        if let unitOID { try out.empty("MeasurementUnitRef", [("MeasurementUnitOID", unitOID)]) }
        if item.numeric, let range = field.range {
            // §3.1.1.3.6.4: one one-sided check per limit, Hard as the form refuses values outside; in the item's unit.
            for (comparator, limit, words) in [("GE", range.min, "at least"), ("LE", range.max, "at most")] {
                guard let limit else { continue }
                let text = ODMValue.decimal(FormValidator.format(limit)) ?? FormValidator.format(limit)
                try out.open("RangeCheck", [("Comparator", comparator), ("SoftHard", "Hard")])
                try out.leaf("CheckValue", text: text)
                if let unitOID { try out.empty("MeasurementUnitRef", [("MeasurementUnitOID", unitOID)]) }
                try translated("ErrorMessage", "must be \(words) \(text) \(field.unit ?? "")".trimmingCharacters(in: .whitespaces))
                out.close("RangeCheck")
            }
        }
        if let list = item.codeList { try out.empty("CodeListRef", [("CodeListOID", list)]) }
        // §3.1.1.3.6.6 Alias: the LOINC code where the definition gives one, and the lab it holds.
        if let loinc = field.loinc { try out.empty("Alias", [("Context", "LOINC"), ("Name", loinc)]) }
        if let lab = field.lab { try out.empty("Alias", [("Context", "LBTESTCD"), ("Name", lab.uppercased())]) }
        out.close("ItemDef")
    }

    private func writeCodeLists() throws {
        // §3.1.1.3.7: coded values as the forms store them, decoded by their labels.
        for list in plan.codeLists where !(options.blinded && list.oid == ODMOID.armCodeList) {
            try out.open("CodeList", [("OID", list.oid), ("Name", list.name), ("DataType", "text")])
            for (index, entry) in list.entries.enumerated() {
                try out.open("CodeListItem", [("CodedValue", entry.code), ("OrderNumber", "\(index + 1)")])
                try translated("Decode", entry.label)
                if let loinc = entry.loinc { try out.empty("Alias", [("Context", "LOINC"), ("Name", loinc)]) }
                out.close("CodeListItem")
            }
            out.close("CodeList")
        }
    }

    private func writeAdminData() throws {
        // §3.1.2: users, then locations, then signature definitions.
        try out.open("AdminData", [("StudyOID", plan.studyOID)])
        for user in administration.users {
            try out.open("User", [("OID", ODMOID.user(user.name)), ("UserType", user.kind?.rawValue)])
            try out.leaf("LoginName", text: user.name)
            if let name = user.fullName { try out.leaf("FullName", text: name) }
            for site in user.sites { try out.empty("LocationRef", [("LocationOID", ODMOID.location(site))]) }
            out.close("User")
        }
        for site in administration.sites {
            try out.open("Location", [("OID", ODMOID.location(site.code)), ("Name", site.name), ("LocationType", "Site")])
            try out.empty("MetaDataVersionRef", [("StudyOID", plan.studyOID), ("MetaDataVersionOID", plan.mdvOID), ("EffectiveDate", site.effectiveDate)])
            out.close("Location")
        }
        for meaning in administration.meanings {
            // 21 CFR 11.50: the meaning goes with every signature; ODM's Meaning is the short name, LegalReason the statement.
            try out.open("SignatureDef", [("OID", ODMOID.signature(meaning.code)), ("Methodology", "Electronic")])
            try out.leaf("Meaning", text: meaning.code)
            try out.leaf("LegalReason", text: meaning.statement)
            out.close("SignatureDef")
        }
        out.close("AdminData")
    }

    private func translated(_ element: String, _ text: String) throws {
        try out.open(element)
        try out.leaf("TranslatedText", [("xml:lang", options.language)], text: text)
        out.close(element)
    }

    // MARK: Clinical data

    private func writeSubject(_ subject: ODMSubject) throws {
        let key = subject.key
        out.path = key.isEmpty ? "(subject)" : key
        guard !key.isEmpty else { throw ODMError.invalidValue(path: "(subject)", value: key, rule: "is not a subject key: one is required") }
        guard !keys.contains(key) else { throw ODMError.duplicate(kind: "subject", value: key) }
        guard plan.sites.contains(subject.site) else { throw ODMError.unknown(kind: "site", value: subject.site, path: key) }

        // Forms by visit and form, in the definition's order.
        var forms: [Int: [Int: ODMFormData]] = [:]
        for data in subject.forms {
            let path = "\(key)/\(data.visit)/\(data.form)"
            guard let visit = plan.visitIndex[data.visit] else { throw ODMError.unknown(kind: "visit", value: data.visit, path: path) }
            guard let form = plan.formIndex[data.form] else { throw ODMError.unknown(kind: "form", value: data.form, path: path) }
            guard study.forms[form].visits.contains(data.visit) else { throw ODMError.formNotAtVisit(form: data.form, visit: data.visit, path: path) }
            guard forms[visit]?[form] == nil else { throw ODMError.duplicate(kind: "form at a visit", value: "\(key)/\(data.visit)/\(data.form)") }
            for field in Set(data.values.keys).union(data.audit.keys).sorted() where plan.items[data.form]?[field] == nil {
                throw ODMError.unknown(kind: "field", value: field, path: path)
            }
            forms[visit, default: [:]][form] = data
        }
        // Lab results by visit and the catalogue's order of tests.
        var labs: [Int: [Int: ODMLabResult]] = [:]
        for lab in subject.labs {
            let path = "\(key)/\(lab.visit)/\(ODMOID.labForm)"
            guard let visit = plan.visitIndex[lab.visit] else { throw ODMError.unknown(kind: "visit", value: lab.visit, path: path) }
            guard let test = plan.labIndex[lab.test.uppercased()] else { throw ODMError.unknown(kind: "lab test", value: lab.test, path: path) }
            guard labs[visit]?[test] == nil else { throw ODMError.duplicate(kind: "lab result at a visit", value: "\(key)/\(lab.visit)/\(lab.test)") }
            let canonical = plan.labTests[test].unit
            guard lab.unit == canonical else {
                throw ODMError.invalidValue(path: "\(path)/\(lab.test)", value: lab.unit, rule: "is not the test's canonical unit, \(canonical)")
            }
            labs[visit, default: [:]][test] = lab
        }
        // The latest signature on the casebook and on each form.
        var casebookSignature: ODMSignature?
        var formSignatures: [Int: [Int: ODMSignature]] = [:]
        for signature in subject.signatures {
            switch signature.covers {
            case .casebook:
                try checkSignature(signature, path: key)
                if casebookSignature.map({ Self.isLater(signature, than: $0) }) ?? true { casebookSignature = signature }
            case .form(let visitCode, let formCode):
                let path = "\(key)/\(visitCode)/\(formCode)"
                guard let visit = plan.visitIndex[visitCode] else { throw ODMError.unknown(kind: "visit", value: visitCode, path: path) }
                guard let form = plan.formIndex[formCode] else { throw ODMError.unknown(kind: "form", value: formCode, path: path) }
                guard study.forms[form].visits.contains(visitCode) else { throw ODMError.formNotAtVisit(form: formCode, visit: visitCode, path: path) }
                try checkSignature(signature, path: path)
                if formSignatures[visit]?[form].map({ Self.isLater(signature, than: $0) }) ?? true { formSignatures[visit, default: [:]][form] = signature }
            }
        }
        if !options.blinded, let allocation = subject.allocation, !plan.arms.contains(allocation.arm) {
            throw ODMError.unknown(kind: "arm", value: allocation.arm, path: key)
        }

        // §3.1.4.1 SubjectData: (AuditRecord?, Signature?, InvestigatorRef?, SiteRef?, Annotation*, StudyEventData*).
        try out.open("SubjectData", [("SubjectKey", key)])
        if let casebookSignature { try writeSignature(casebookSignature, subject: subject) }
        try out.empty("SiteRef", [("LocationOID", ODMOID.location(subject.site))])
        let visits = Set(forms.keys).union(labs.keys).union(formSignatures.keys).sorted()
        for visit in visits {
            let visitCode = study.visits[visit].code
            // Forms with a value or a signature; a form without either is absent data (§2.10: NULLs need not be sent).
            var present = Set((formSignatures[visit] ?? [:]).keys)
            for (form, data) in forms[visit] ?? [:] where data.values.values.contains(where: { !$0.isEmpty }) { present.insert(form) }
            guard !present.isEmpty || labs[visit] != nil else { continue }
            try out.open("StudyEventData", [("StudyEventOID", ODMOID.studyEvent(visitCode))])
            for form in present.sorted() {
                try writeForm(study.forms[form], visit: visitCode, data: forms[visit]?[form], signature: formSignatures[visit]?[form], subject: subject)
            }
            if let results = labs[visit] {
                try out.open("FormData", [("FormOID", ODMOID.labForm)])
                for test in results.keys.sorted() { try writeLab(results[test]!, subject: subject) }
                out.close("FormData")
            }
            out.close("StudyEventData")
        }
        if !options.blinded, let allocation = subject.allocation {
            out.path = "\(key)/\(ODMOID.armEvent)"
            try out.open("StudyEventData", [("StudyEventOID", ODMOID.armEvent)])
            try out.open("FormData", [("FormOID", ODMOID.armForm)])
            try out.open("ItemGroupData", [("ItemGroupOID", ODMOID.armItemGroup)])
            try out.empty("ItemData", [("ItemOID", ODMOID.casebookItem(ODMArmItem.ARMCD.rawValue)), ("Value", allocation.arm)])
            if let at = allocation.allocatedAt {
                try out.empty("ItemData", [("ItemOID", ODMOID.casebookItem(ODMArmItem.RANDDTC.rawValue)), ("Value", AuditEntry.timestamp(at))])
            }
            out.close("ItemGroupData")
            out.close("FormData")
            out.close("StudyEventData")
        }
        out.close("SubjectData")
    }

    private func writeForm(_ form: Form, visit: String, data: ODMFormData?, signature: ODMSignature?, subject: ODMSubject) throws {
        // §3.1.4.1.1.1 FormData: (AuditRecord?, Signature?, ArchiveLayoutRef?, Annotation*, ItemGroupData*).
        try out.open("FormData", [("FormOID", ODMOID.form(form.code))])
        if let signature { try writeSignature(signature, subject: subject) }
        let values = (data?.values ?? [:]).filter { !$0.value.isEmpty }
        if !values.isEmpty {
            try out.open("ItemGroupData", [("ItemGroupOID", ODMOID.itemGroup(form.code))])
            for field in form.fields {
                guard let raw = values[field.code] else { continue }
                let path = "\(subject.key)/\(visit)/\(form.code).\(field.code)"
                out.path = path
                let item = plan.items[form.code]![field.code]!
                let value = try item.odmValue(raw, path: path)
                // §3.1.4.1.1.1.1.1 ItemData: (AuditRecord?, Signature?, MeasurementUnitRef?, Annotation*); the value as an
                // attribute (untyped ItemData, as ODM 1.2 and every reader takes it).
                let audit = data?.audit[field.code]?.max { $0.sequence < $1.sequence }
                if let audit {
                    try out.open("ItemData", [("ItemOID", item.oid), ("Value", value)])
                    try writeAudit(audit, subject: subject, path: path)
                    out.close("ItemData")
                } else {
                    try out.empty("ItemData", [("ItemOID", item.oid), ("Value", value)])
                }
            }
            out.close("ItemGroupData")
        }
        out.close("FormData")
    }

    private func writeLab(_ lab: ODMLabResult, subject: ODMSubject) throws {
        let test = lab.test.uppercased()
        let path = "\(subject.key)/\(lab.visit)/\(ODMOID.labForm)/\(test)"
        out.path = path
        func number(_ value: Double, _ item: ODMLabItem) throws -> String {
            guard value.isFinite, let text = ODMValue.decimal(FormValidator.format(value)) else {
                throw ODMError.invalidValue(path: "\(path).\(item.rawValue)", value: "\(value)", rule: "is not a finite number")
            }
            return text
        }
        let value = try number(lab.value, .LBSTRESN), entered = try number(lab.enteredValue, .LBORRES)
        guard lab.enteredUnit.count <= ODMLabItem.unitLength else {
            throw ODMError.invalidValue(path: "\(path).\(ODMLabItem.LBORRESU.rawValue)", value: lab.enteredUnit, rule: "is longer than the item's Length, \(ODMLabItem.unitLength)")
        }
        // §3.1.4.1.1.1.1: the repeat key tells the results of one visit apart; the record's audit event goes on the group.
        try out.open("ItemGroupData", [("ItemGroupOID", ODMOID.labItemGroup), ("ItemGroupRepeatKey", test)])
        if let audit = lab.audit.max(by: { $0.sequence < $1.sequence }) { try writeAudit(audit, subject: subject, path: path) }
        func item(_ item: ODMLabItem, _ value: String) throws { try out.empty("ItemData", [("ItemOID", ODMOID.casebookItem(item.rawValue)), ("Value", value)]) }
        try item(.LBTESTCD, test)
        try item(.LBDTC, AuditEntry.timestamp(lab.collectedAt))
        try item(.LBORRES, entered)
        try item(.LBORRESU, lab.enteredUnit)
        try out.open("ItemData", [("ItemOID", ODMOID.casebookItem(ODMLabItem.LBSTRESN.rawValue)), ("Value", value)])
        try out.empty("MeasurementUnitRef", [("MeasurementUnitOID", ODMOID.unit(lab.unit))])
        out.close("ItemData")
        if let grade = lab.grade { try item(.LBTOXGR, "\(grade)") }
        out.close("ItemGroupData")
    }

    /// §3.1.4.1.2 AuditRecord: who, where, when, why; SourceID is the audit chain's sequence number.
    private func writeAudit(_ event: ODMAuditEvent, subject: ODMSubject, path: String) throws {
        guard plan.users.contains(event.user) else { throw ODMError.unknown(kind: "user", value: event.user, path: path) }
        let site = event.site ?? subject.site
        guard plan.sites.contains(site) else { throw ODMError.unknown(kind: "site", value: site, path: path) }
        guard let stamp = ODMValue.dateTime(event.occurredAt), let instant = DateParsing.instant(event.occurredAt) else {
            throw ODMError.invalidValue(path: "\(path) audit \(event.sequence)", value: event.occurredAt, rule: "is not a date and time")
        }
        guard instant <= options.createdAt else { throw ODMError.timeAfterCreation(path: "\(path) audit \(event.sequence)", time: stamp) }
        try out.open("AuditRecord")
        try out.empty("UserRef", [("UserOID", ODMOID.user(event.user))])
        try out.empty("LocationRef", [("LocationOID", ODMOID.location(site))])
        try out.leaf("DateTimeStamp", text: stamp)
        if let reason = event.reason, !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { try out.leaf("ReasonForChange", text: reason) }
        try out.leaf("SourceID", text: "\(event.sequence)")
        out.close("AuditRecord")
    }

    private func checkSignature(_ signature: ODMSignature, path: String) throws {
        guard plan.meanings.contains(signature.meaning) else { throw ODMError.unknown(kind: "signature meaning", value: signature.meaning, path: path) }
        guard plan.users.contains(signature.user) else { throw ODMError.unknown(kind: "user", value: signature.user, path: path) }
        if let site = signature.site, !plan.sites.contains(site) { throw ODMError.unknown(kind: "site", value: site, path: path) }
        guard signature.signedAt <= options.createdAt else {
            throw ODMError.timeAfterCreation(path: "\(path) signature", time: AuditEntry.timestamp(signature.signedAt))
        }
    }

    /// §3.1.4.1.3 Signature: (UserRef, LocationRef, SignatureRef, DateTimeStamp). Its ID is optional outside a Signatures
    /// container; it is given, unique in the document, because readers such as odmlib require it.
    private func writeSignature(_ signature: ODMSignature, subject: ODMSubject) throws {
        signatureCount += 1
        try out.open("Signature", [("ID", "SIG.\(signatureCount)")])
        try out.empty("UserRef", [("UserOID", ODMOID.user(signature.user))])
        try out.empty("LocationRef", [("LocationOID", ODMOID.location(signature.site ?? subject.site))])
        try out.empty("SignatureRef", [("SignatureOID", ODMOID.signature(signature.meaning))])
        try out.leaf("DateTimeStamp", text: AuditEntry.timestamp(signature.signedAt))
        out.close("Signature")
    }

    /// A total order, so the signature written does not depend on the order signatures are given in.
    private static func isLater(_ a: ODMSignature, than b: ODMSignature) -> Bool {
        (a.signedAt, a.meaning, a.user) > (b.signedAt, b.meaning, b.user)
    }
}

// MARK: - Casebook's own items

/// The lab result group's items, named as the SDTM LB variables they hold (SDSVarName, §3.1.1.3.6).
fileprivate enum ODMLabItem: String, CaseIterable {
    case LBTESTCD, LBDTC, LBORRES, LBORRESU, LBSTRESN, LBTOXGR

    var dataType: String {
        switch self {
        case .LBTESTCD, .LBORRESU: "text"
        case .LBDTC: "datetime"
        case .LBORRES, .LBSTRESN: "float"
        case .LBTOXGR: "integer"
        }
    }

    /// A unit as entered is the site's free text; 64 characters hold any in use.
    static let unitLength = 64

    /// §3.1.1.3.6: required for text.
    func length(_ plan: ODMPlan) -> Int? {
        switch self {
        case .LBTESTCD: max(1, plan.labTests.map(\.code.count).max() ?? 1)
        case .LBORRESU: Self.unitLength
        default: nil
        }
    }

    func question(_ study: StudyDefinition) -> String {
        switch self {
        case .LBTESTCD: "Lab test"
        case .LBDTC: "Sample collected"
        case .LBORRES: "Result as entered"
        case .LBORRESU: "Unit as entered"
        case .LBSTRESN: "Result in the test's standard unit"
        case .LBTOXGR: "CTCAE grade (version \(study.safety.ctcaeVersion))"
        }
    }
}

/// The allocation group's items: the arm code (SDTM DM ARMCD) and when the subject was allocated.
fileprivate enum ODMArmItem: String, CaseIterable {
    case ARMCD, RANDDTC

    var dataType: String { self == .ARMCD ? "text" : "datetime" }
    var question: String { self == .ARMCD ? "Arm" : "Allocated" }
}

// MARK: - The plan: what the definition gives, checked once

fileprivate struct ODMPlan {
    struct Item {
        var oid: String
        var field: Field
        var dataType: String
        var length: Int?
        var codeList: String?
        /// The coded values a choice or yes/no field takes.
        var codes: Set<String>?
        var numeric: Bool { field.type == .number || field.type == .integer }

        /// The stored text as ODM writes a value of the item's type (§3.1.4.1.1.1.1.1: the Value obeys its DataType's
        /// format, §2.13, and fits the ItemDef's Length).
        func odmValue(_ raw: String, path: String) throws -> String {
            func refuse(_ rule: String) -> ODMError { .invalidValue(path: path, value: raw, rule: rule) }
            switch field.type {
            case .number:
                guard let text = ODMValue.decimal(raw) else { throw refuse("is not a decimal number") }
                return text
            case .integer:
                guard let text = ODMValue.integer(raw) else { throw refuse("is not a whole number") }
                return text
            case .date:
                guard ODMValue.isDate(raw) else { throw refuse("is not a date as yyyy-MM-dd") }
                return raw
            case .datetime:
                guard let text = ODMValue.dateTime(raw) else { throw refuse("is not a date and time") }
                return text
            case .choice, .yesno:
                guard codes?.contains(raw) == true else { throw refuse("is not in the code list \(codeList ?? "")") }
                return raw
            case .text:
                guard raw.count <= length ?? Int.max else { throw refuse("is longer than the item's Length, \(length ?? 0)") }
                return raw
            }
        }
    }

    struct CodeList {
        struct Entry {
            var code: String
            var label: String
            var loinc: String?
        }
        var oid: String
        var name: String
        var entries: [Entry]
    }

    /// The text length FormValidator allows a text field.
    static let textLength = 2000

    let studyOID: String
    let mdvOID: String
    let visitIndex: [String: Int]
    let formIndex: [String: Int]
    let items: [String: [String: Item]]
    let codeLists: [CodeList]
    let units: [String]
    let labUnits: [String]
    let labTests: [LabTest]
    let labIndex: [String: Int]
    let arms: Set<String>
    let armLength: Int
    let users: Set<String>
    let sites: Set<String>
    let meanings: Set<String>

    init(study: StudyDefinition, administration: ODMAdministration, options: ODMOptions) throws {
        if let asOf = options.asOf, asOf > options.createdAt {
            throw ODMError.timeAfterCreation(path: "AsOfDateTime", time: AuditEntry.timestamp(asOf))
        }
        studyOID = ODMOID.study(study)
        mdvOID = ODMOID.metaDataVersion(study)
        var oids: Set<String> = []
        func claim(_ oid: String) throws {
            guard oids.insert(oid).inserted else { throw ODMError.duplicate(kind: "OID", value: oid) }
        }
        try claim(studyOID)
        try claim(mdvOID)

        var visitIndex: [String: Int] = [:]
        for (index, visit) in study.visits.enumerated() {
            guard visitIndex.updateValue(index, forKey: visit.code) == nil else { throw ODMError.duplicate(kind: "visit", value: visit.code) }
            try claim(ODMOID.studyEvent(visit.code))
        }
        var formIndex: [String: Int] = [:]
        var items: [String: [String: Item]] = [:]
        var units: [String] = []
        var codeLists: [CodeList] = []
        var listOfChoices: [[String]: String] = [:]
        let yesNo = [Choice(code: "yes", label: "Yes"), Choice(code: "no", label: "No")]
        for (index, form) in study.forms.enumerated() {
            guard formIndex.updateValue(index, forKey: form.code) == nil else { throw ODMError.duplicate(kind: "form", value: form.code) }
            try claim(ODMOID.form(form.code))
            try claim(ODMOID.itemGroup(form.code))
            var fields: [String: Item] = [:]
            for field in form.fields {
                let oid = ODMOID.item(form: form.code, field: field.code)
                try claim(oid)
                var item = Item(oid: oid, field: field, dataType: "text", length: nil, codeList: nil, codes: nil)
                switch field.type {
                case .number: item.dataType = "float"
                case .integer: item.dataType = "integer"
                case .date: item.dataType = "date"
                case .datetime: item.dataType = "datetime"
                case .text: item.length = Self.textLength
                case .choice, .yesno:
                    let choices = field.type == .yesno ? yesNo : field.choices ?? []
                    let key = choices.flatMap { [$0.code, $0.label] }
                    if let oid = listOfChoices[key] {
                        item.codeList = oid
                    } else {
                        let oid = field.type == .yesno ? ODMOID.yesNoCodeList : ODMOID.codeList(form: form.code, field: field.code)
                        try claim(oid)
                        listOfChoices[key] = oid
                        codeLists.append(
                            CodeList(oid: oid, name: choices.map(\.label).joined(separator: " / "), entries: choices.map { .init(code: $0.code, label: $0.label) }))
                        item.codeList = oid
                    }
                    item.codes = Set(choices.map(\.code))
                    item.length = max(1, choices.map(\.code.count).max() ?? 1)
                }
                if item.numeric, let unit = field.unit, !units.contains(unit) { units.append(unit) }
                guard fields.updateValue(item, forKey: field.code) == nil else { throw ODMError.duplicate(kind: "field", value: "\(form.code).\(field.code)") }
            }
            items[form.code] = fields
        }

        labTests = study.labTests
        var labIndex: [String: Int] = [:]
        var labUnits: [String] = []
        for (index, test) in labTests.enumerated() {
            guard labIndex.updateValue(index, forKey: test.code) == nil else { throw ODMError.duplicate(kind: "lab test", value: test.code) }
            if !labUnits.contains(test.unit) { labUnits.append(test.unit) }
        }
        for unit in labUnits where !units.contains(unit) { units.append(unit) }
        for unit in units { try claim(ODMOID.unit(unit)) }
        codeLists.append(
            CodeList(oid: ODMOID.labTestCodeList, name: "Lab tests", entries: labTests.map { .init(code: $0.code, label: $0.name, loinc: $0.loinc) }))
        for oid in [ODMOID.labForm, ODMOID.labItemGroup, ODMOID.labTestCodeList] + ODMLabItem.allCases.map({ ODMOID.casebookItem($0.rawValue) }) { try claim(oid) }

        arms = Set(study.arms.map(\.code))
        armLength = max(1, study.arms.map(\.code.count).max() ?? 1)
        if !options.blinded {
            codeLists.append(CodeList(oid: ODMOID.armCodeList, name: "Arms", entries: study.arms.map { .init(code: $0.code, label: $0.name) }))
            for oid in [ODMOID.armEvent, ODMOID.armForm, ODMOID.armItemGroup, ODMOID.armCodeList] + ODMArmItem.allCases.map({ ODMOID.casebookItem($0.rawValue) }) {
                try claim(oid)
            }
        }

        var sites: Set<String> = []
        for site in administration.sites {
            guard sites.insert(site.code).inserted else { throw ODMError.duplicate(kind: "site", value: site.code) }
            try claim(ODMOID.location(site.code))
            guard ODMValue.isDate(site.effectiveDate) else {
                throw ODMError.invalidValue(path: "site \(site.code)", value: site.effectiveDate, rule: "is not an effective date as yyyy-MM-dd")
            }
        }
        var users: Set<String> = []
        for user in administration.users {
            guard users.insert(user.name).inserted else { throw ODMError.duplicate(kind: "user", value: user.name) }
            try claim(ODMOID.user(user.name))
            for site in user.sites where !sites.contains(site) { throw ODMError.unknown(kind: "site", value: site, path: "user \(user.name)") }
        }
        var meanings: Set<String> = []
        for meaning in administration.meanings {
            guard meanings.insert(meaning.code).inserted else { throw ODMError.duplicate(kind: "signature meaning", value: meaning.code) }
            try claim(ODMOID.signature(meaning.code))
        }

        self.visitIndex = visitIndex
        self.formIndex = formIndex
        self.items = items
        self.codeLists = codeLists
        self.units = units
        self.labUnits = labUnits
        self.labIndex = labIndex
        self.users = users
        self.sites = sites
        self.meanings = meanings
    }
}

// MARK: - Values as ODM writes them

/// Stored text in ODM's data formats (§2.13): float is -?digit+(.digit+)?, integer -?digit+, datetime a complete
/// xs:dateTime.
public enum ODMValue {
    /// A number in ODM's float format ("1e-05" → "0.00001", "+.5" → "0.5"); nil for what is not a finite number.
    public static func decimal(_ text: String) -> String? {
        guard !text.isEmpty, text.allSatisfy({ "0123456789+-.eE".contains($0) }), let number = Double(text), number.isFinite else { return nil }
        if isFloat(text) { return text }
        guard let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else { return nil }
        let plain = "\(decimal)"
        return isFloat(plain) ? plain : nil
    }

    /// A whole number in ODM's integer format ("+7" → "7").
    public static func integer(_ text: String) -> String? {
        guard let number = Int(text) else { return nil }
        return text.first == "+" ? String(number) : text
    }

    private static func isFloat(_ text: String) -> Bool {
        let unsigned = text.first == "-" ? text.dropFirst() : Substring(text)
        let parts = unsigned.split(separator: ".", omittingEmptySubsequences: false)
        return (1...2).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { ("0"..."9").contains($0) } }
    }

    /// yyyy-MM-dd of a day the calendar has.
    public static func isDate(_ text: String) -> Bool {
        StudyValidator.isDate(text) && DateParsing.day(text) != nil
    }

    /// Casebook's instants ("2026-01-02T03:04", seconds optional, a Z or ±hh:mm offset, none meaning UTC) as a complete
    /// xs:dateTime with seconds and a zone (§3.1.4.1.2.2 DateTimeStamp: the complete representation); nil when not one.
    public static func dateTime(_ text: String) -> String? {
        guard DateParsing.instant(text) != nil else { return nil }
        let pieces = text.split(separator: "T", maxSplits: 1)
        let day = pieces[0].split(separator: "-").map(String.init)
        guard day.count == 3, let year = Int(day[0]), let month = Int(day[1]), let date = Int(day[2]) else { return nil }
        var time = Substring(pieces[1])
        var zone = "Z"
        if time.hasSuffix("Z") {
            time = time.dropLast()
        } else if let sign = time.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let offset = time[time.index(after: sign)...].split(separator: ":").compactMap { Int($0) }
            guard offset.count == 2 else { return nil }
            zone = "\(time[sign])\(pad(offset[0], 2)):\(pad(offset[1], 2))"
            time = time[..<sign]
        }
        let clock = time.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(clock.count), let hour = Int(clock[0]), let minute = Int(clock[1]) else { return nil }
        var seconds = "00"
        if clock.count == 3 {
            let parts = clock[2].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard let whole = Int(parts[0]), parts.count == 1 || (!parts[1].isEmpty && parts[1].allSatisfy(\.isNumber)) else { return nil }
            seconds = pad(whole, 2) + (parts.count == 2 ? ".\(parts[1])" : "")
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(date, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(seconds)\(zone)"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

// MARK: - XML text

/// Indented XML into a byte buffer, escaping as it goes.
fileprivate struct ODMXMLBuffer {
    var bytes: [UInt8] = []
    var depth = 0
    /// Where the writer is, for the error a character XML cannot carry raises.
    var path = "(metadata)"

    init() { bytes.reserveCapacity(1 << 16) }

    mutating func declaration() { append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") }

    mutating func open(_ name: String, _ attributes: [(String, String?)] = []) throws {
        try start(name, attributes)
        append(">\n")
        depth += 1
    }

    mutating func empty(_ name: String, _ attributes: [(String, String?)] = []) throws {
        try start(name, attributes)
        append("/>\n")
    }

    mutating func leaf(_ name: String, _ attributes: [(String, String?)] = [], text: String) throws {
        try start(name, attributes)
        bytes.append(UInt8(ascii: ">"))
        try escape(text, attribute: false)
        append("</\(name)>\n")
    }

    mutating func close(_ name: String) {
        depth -= 1
        indent()
        append("</\(name)>\n")
    }

    private mutating func start(_ name: String, _ attributes: [(String, String?)]) throws {
        indent()
        bytes.append(UInt8(ascii: "<"))
        append(name)
        for (key, value) in attributes {
            guard let value else { continue }
            bytes.append(UInt8(ascii: " "))
            append(key)
            append("=\"")
            try escape(value, attribute: true)
            bytes.append(UInt8(ascii: "\""))
        }
    }

    private mutating func indent() { bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: depth * 2)) }

    private mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    /// XML 1.0 §2.4 and §3.3.3: markup characters as entities; in attributes also tab and line breaks as character
    /// references, so attribute-value normalization keeps them. Characters outside XML 1.0's Char production refuse.
    private mutating func escape(_ text: String, attribute: Bool) throws {
        let utf8 = text.utf8
        // Most values need nothing: copy them whole.
        if !utf8.contains(where: { $0 < 0x20 || $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0xEF }) {
            bytes.append(contentsOf: utf8)
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x26: append("&amp;")
            case 0x3C: append("&lt;")
            case 0x3E: append("&gt;")
            case 0x22 where attribute: append("&quot;")
            case 0x09 where attribute: append("&#9;")
            case 0x0A where attribute: append("&#10;")
            case 0x0D: append("&#13;")
            case 0x09, 0x0A: bytes.append(UInt8(scalar.value))
            case 0x00..<0x20, 0xFFFE, 0xFFFF: throw ODMError.unrepresentableText(path: path)
            default: bytes.append(contentsOf: String(Character(scalar)).utf8)
            }
        }
    }
}
