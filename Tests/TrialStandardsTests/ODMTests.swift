import Foundation
import Testing
import TrialDomain
import TrialStandards

#if canImport(FoundationXML)
import FoundationXML
#endif

// CDISC ODM 1.3.2 export of both studies. Expected OIDs, element orders and values are worked by hand from the ODM 1.3.2
// specification and schema (../shared/reference/xsd/odm-1.3.2) and the study definitions, never read back from the writer.

/// The repository root (through the symlinks a scratch package may put in front of this file).
private let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let schemaFolder = root.deletingLastPathComponent().appendingPathComponent("shared/reference/xsd/odm-1.3.2")
private let foundationXSD = schemaFolder.appendingPathComponent("ODM1-3-2-foundation.xsd")
private let hasReference = FileManager.default.fileExists(atPath: foundationXSD.path)

private func first() throws -> StudyDefinition { try StudyFile.builtIn() }
private func second() throws -> StudyDefinition {
    try StudyFile.read(try String(contentsOf: root.appendingPathComponent("studies/ucmsc-aclf.yaml"), encoding: .utf8))
}
private func studies() throws -> [StudyDefinition] { [try first(), try second()] }

private let created = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
private func at(_ text: String) -> Date { DateParsing.instant(text)! }

private func administration(_ study: StudyDefinition) -> ODMAdministration {
    let site = study.sites[0].code
    return ODMAdministration(
        users: [
            ODMUser(name: "ana.investigator", fullName: "Ana Investigator", kind: .investigator, sites: [site]),
            ODMUser(name: "ben.monitor", kind: .sponsor),
        ],
        sites: ODMSite.sites(of: study, effectiveDate: "2026-01-01"),
        // The meanings and their statements come from the caller: here, Casebook's own.
        meanings: SignatureMeaning.allCases.map { ODMSignatureMeaning(code: $0.rawValue, statement: $0.statement) })
}

private func options(blinded: Bool = false, threshold: Int = 64 * 1024) -> ODMOptions {
    ODMOptions(fileOID: "CASEBOOK.EXPORT.1", createdAt: created, asOf: created, blinded: blinded, sourceSystemVersion: "test", flushThreshold: threshold)
}

private func export(_ study: StudyDefinition, _ subjects: [ODMSubject], blinded: Bool = false) throws -> Data {
    try ODMWriter.document(study: study, administration: administration(study), options: options(blinded: blinded), subjects: subjects)
}

/// A subject of the built-in study with a value of each kind, audited values, lab results and signatures.
private func builtInSubject(_ study: StudyDefinition, key: String = "001-001") -> ODMSubject {
    let site = study.sites[0].code
    return ODMSubject(
        key: key, site: site,
        forms: [
            ODMFormData(
                visit: "screening", form: "demographics", values: ["screening_date": "2026-01-05", "birth_date": "1976-01-01", "sex": "M"],
                audit: [
                    "sex": [
                        ODMAuditEvent(sequence: 42, occurredAt: "2026-01-06T10:30:00.000Z", user: "ana.investigator", reason: "Typo & <fix>"),
                        ODMAuditEvent(sequence: 10, occurredAt: "2026-01-05T09:00:00.000Z", user: "ben.monitor"),
                    ]
                ]),
            ODMFormData(
                visit: "screening", form: "consent",
                values: ["obtained": "yes", "signed_at": "2026-01-05T08:30", "form_version": "v1 & \"final\" <2> > 1"]),
            ODMFormData(
                visit: "screening", form: "labs",
                values: ["collected_at": "2026-01-05T07:00+08:00", "total_bilirubin": "250", "inr": "1.8", "albumin": ""]),
            ODMFormData(visit: "safety_24h", form: "toxicity_24h", values: ["assessed_at": "2026-01-08T09:15:30Z", "any_toxicity": "no", "worst_grade": "0"]),
        ],
        labs: [
            ODMLabResult(
                visit: "screening", test: "BILI", collectedAt: at("2026-01-05T07:00Z"), value: 250, unit: "umol/L", enteredValue: 14.62, enteredUnit: "mg/dL", grade: 3,
                audit: [ODMAuditEvent(sequence: 50, occurredAt: "2026-01-05T07:05:00.000Z", user: "ana.investigator")]),
            ODMLabResult(visit: "screening", test: "INR", collectedAt: at("2026-01-05T07:00Z"), value: 1.8, unit: "ratio", enteredValue: 1.8, enteredUnit: "ratio"),
            ODMLabResult(visit: "baseline", test: "ALB", collectedAt: at("2026-01-06T07:00Z"), value: 0.00001, unit: "g/L", enteredValue: 0.001, enteredUnit: "mg/dL"),
        ],
        signatures: [
            ODMSignature(meaning: "approve", user: "ana.investigator", signedAt: at("2026-02-01T12:00Z"), covers: .casebook),
            ODMSignature(meaning: "review", user: "ben.monitor", signedAt: at("2026-01-20T12:00Z"), covers: .form(visit: "screening", form: "demographics")),
            ODMSignature(meaning: "approve", user: "ana.investigator", signedAt: at("2026-01-21T12:00Z"), covers: .form(visit: "screening", form: "demographics")),
            ODMSignature(meaning: "review", user: "ben.monitor", signedAt: at("2026-01-22T12:00Z"), covers: .form(visit: "transplant", form: "transplant")),
        ],
        allocation: ODMAllocation(arm: "msc_ev", allocatedAt: at("2026-01-06T10:00Z")))
}

/// Every form of a study at its first visit with a value of each field, and every lab at the first visit: for the
/// schema checks, so that every kind of item is written.
private func fullSubject(_ study: StudyDefinition, key: String) -> ODMSubject {
    var forms: [ODMFormData] = []
    for form in study.forms {
        var values: [String: String] = [:]
        for field in form.fields {
            switch field.type {
            case .number: values[field.code] = FormValidator.format(field.range?.max ?? 1.5)
            case .integer: values[field.code] = FormValidator.format(field.range?.min ?? 2)
            case .date: values[field.code] = "2026-01-05"
            case .datetime: values[field.code] = "2026-01-05T08:00"
            case .yesno: values[field.code] = "yes"
            case .choice: values[field.code] = field.choices!.last!.code
            case .text: values[field.code] = "free text & <b>"
            }
        }
        let audit = Dictionary(
            uniqueKeysWithValues: form.fields.enumerated().map { index, field in
                (field.code, [ODMAuditEvent(sequence: Int64(index + 1), occurredAt: "2026-01-05T09:00:00.000Z", user: "ana.investigator", reason: index == 0 ? nil : "Correction")])
            })
        forms.append(ODMFormData(visit: form.visits[0], form: form.code, values: values, audit: audit))
    }
    let labs = study.labTests.map {
        ODMLabResult(visit: study.visits[0].code, test: $0.code, collectedAt: at("2026-01-05T07:00Z"), value: 1.5, unit: $0.unit, enteredValue: 1.5, enteredUnit: $0.unit, grade: 1)
    }
    return ODMSubject(
        key: key, site: study.sites[0].code, forms: forms, labs: labs,
        signatures: [ODMSignature(meaning: "approve", user: "ana.investigator", signedAt: at("2026-02-01T12:00Z"), covers: .casebook)],
        allocation: ODMAllocation(arm: study.arms[0].code, allocatedAt: at("2026-01-06T10:00Z")))
}

// MARK: Reading the document back

#if canImport(FoundationXML) || os(macOS)
extension XMLElement {
    fileprivate var elements: [XMLElement] { children?.compactMap { $0 as? XMLElement } ?? [] }
    fileprivate func children(_ name: String) -> [XMLElement] { elements.filter { $0.localName == name } }
    fileprivate func child(_ name: String) -> XMLElement? { children(name).first }
    fileprivate var descendants: [XMLElement] { elements.flatMap { [$0] + $0.descendants } }
    fileprivate func all(_ name: String) -> [XMLElement] { descendants.filter { $0.localName == name } }
    /// By name from the attribute list: FoundationXML's attribute(forName:) finds nothing on an element in a default namespace.
    fileprivate subscript(_ attribute: String) -> String? { attributes?.first { $0.name == attribute }?.stringValue }
}

private func parse(_ data: Data) throws -> XMLElement {
    try #require(try XMLDocument(data: data).rootElement())
}

private func find(_ root: XMLElement, _ name: String, _ attribute: String, _ value: String) throws -> XMLElement {
    try #require(root.all(name).first { $0[attribute] == value }, "no \(name) with \(attribute)=\(value)")
}

/// The text of the one TranslatedText under an element's child (Question, Decode, Symbol, ErrorMessage).
private func translated(_ element: XMLElement, _ child: String) -> String? { element.child(child)?.child("TranslatedText")?.stringValue }

@Suite struct ODMTests {
    // MARK: Metadata

    @Test func theBuiltInStudysMetadataWorkedByHand() throws {
        let study = try first()
        let odm = try parse(try export(study, []))
        #expect(odm.localName == "ODM" && odm["ODMVersion"] == "1.3.2" && odm["FileType"] == "Snapshot" && odm["Granularity"] == "All")
        #expect(odm["CreationDateTime"] == "2027-01-15T08:00:00.000Z")
        let studyElement = try #require(odm.child("Study"))
        #expect(studyElement["OID"] == "S.MSC-EV-ACLF-LT")
        let globals = try #require(studyElement.child("GlobalVariables"))
        #expect(globals.child("StudyName")?.stringValue == "MSC-EV of ThirdSunYatSen")
        #expect(globals.child("ProtocolName")?.stringValue == "MSC-EV-ACLF-LT")
        let mdv = try #require(studyElement.child("MetaDataVersion"))
        #expect(mdv["OID"] == "MDV.MSC-EV-ACLF-LT.v1")

        // Visits in protocol order, then the allocation event.
        #expect(mdv.child("Protocol")?.children("StudyEventRef").map { $0["StudyEventOID"]! } == [
            "SE.screening", "SE.transplant", "SE.baseline", "SE.infusion", "SE.safety_24h", "SE.day_7", "SE.day_14", "SE.day_28", "SE.month_3", "SE.month_6",
            "CB.SE.ARM",
        ])
        let infusion = try find(mdv, "StudyEventDef", "OID", "SE.infusion")
        #expect(infusion["Name"] == "Infusion / time zero" && infusion["Repeating"] == "No" && infusion["Type"] == "Scheduled")
        #expect(infusion.children("FormRef").map { $0["FormOID"]! } == ["F.vitals_before", "F.vitals_during", "F.vitals_after", "CB.F.LB"])
        #expect(infusion.children("FormRef").map { $0["OrderNumber"]! } == ["1", "2", "3", "4"])

        // A float with unit, range, LOINC and its lab.
        let bilirubin = try find(mdv, "ItemDef", "OID", "I.labs.total_bilirubin")
        #expect(bilirubin["DataType"] == "float" && bilirubin["Name"] == "total_bilirubin" && bilirubin["Length"] == nil)
        #expect(translated(bilirubin, "Question") == "Total bilirubin")
        #expect(bilirubin.children("MeasurementUnitRef").map { $0["MeasurementUnitOID"]! } == ["MU.umol/L"])
        let checks = bilirubin.children("RangeCheck")
        #expect(checks.map { "\($0["Comparator"]!) \($0.child("CheckValue")!.stringValue!) \($0["SoftHard"]!)" } == ["GE 0 Hard", "LE 1500 Hard"])
        #expect(checks.map { $0.child("MeasurementUnitRef")?["MeasurementUnitOID"] } == ["MU.umol/L", "MU.umol/L"])
        #expect(translated(checks[1], "ErrorMessage") == "must be at most 1500 umol/L")
        #expect(bilirubin.children("Alias").map { "\($0["Context"]!)=\($0["Name"]!)" } == ["LOINC=14631-6", "LBTESTCD=BILI"])
        // Prothrombin activity has a lab but no LOINC; MELD-Na neither.
        #expect(try find(mdv, "ItemDef", "OID", "I.labs.pt_activity").children("Alias").map { $0["Context"]! } == ["LBTESTCD"])
        #expect(try find(mdv, "ItemDef", "OID", "I.labs.meld_na").children("Alias").isEmpty)
        #expect(try find(mdv, "ItemDef", "OID", "I.labs.inr").children("RangeCheck").first?.child("CheckValue")?.stringValue == "0.5")

        #expect(try find(mdv, "ItemDef", "OID", "I.toxicity_24h.worst_grade")["DataType"] == "integer")
        #expect(try find(mdv, "ItemDef", "OID", "I.demographics.birth_date")["DataType"] == "date")
        #expect(try find(mdv, "ItemDef", "OID", "I.consent.signed_at")["DataType"] == "datetime")
        let version = try find(mdv, "ItemDef", "OID", "I.consent.form_version")
        #expect(version["DataType"] == "text" && version["Length"] == "2000")

        // Choices: a code list each; the same choices share one; yes/no has Casebook's.
        let sex = try find(mdv, "ItemDef", "OID", "I.demographics.sex")
        #expect(sex["DataType"] == "text" && sex["Length"] == "1" && sex.child("CodeListRef")?["CodeListOID"] == "CL.demographics.sex")
        let sexes = try find(mdv, "CodeList", "OID", "CL.demographics.sex")
        #expect(sexes.children("CodeListItem").map { "\($0["CodedValue"]!)=\(translated($0, "Decode")!)" } == ["F=Female", "M=Male"])
        #expect(try find(mdv, "ItemDef", "OID", "I.history.hiv").child("CodeListRef")?["CodeListOID"] == "CL.history.ebv")
        #expect(try find(mdv, "ItemDef", "OID", "I.history.hcv").child("CodeListRef")?["CodeListOID"] == "CL.history.ebv")
        #expect(try find(mdv, "ItemDef", "OID", "I.clinical.ascites_grade")["Length"] == "15")  // "moderate-severe"
        let malignancy = try find(mdv, "ItemDef", "OID", "I.history.malignancy")
        #expect(malignancy["DataType"] == "text" && malignancy["Length"] == "3" && malignancy.child("CodeListRef")?["CodeListOID"] == "CB.CL.YESNO")
        #expect(try find(mdv, "CodeList", "OID", "CB.CL.YESNO").children("CodeListItem").map { $0["CodedValue"]! } == ["yes", "no"])

        // The lab group: repeating, keyed by the test code; its standard value in each test's canonical unit.
        let lb = try find(mdv, "ItemGroupDef", "OID", "CB.IG.LB")
        #expect(lb["Repeating"] == "Yes" && lb["Domain"] == "LB")
        #expect(lb.children("ItemRef").map { $0["ItemOID"]! } == ["CB.I.LBTESTCD", "CB.I.LBDTC", "CB.I.LBORRES", "CB.I.LBORRESU", "CB.I.LBSTRESN", "CB.I.LBTOXGR"])
        #expect(lb.children("ItemRef").first?["KeySequence"] == "1")
        let standard = try find(mdv, "ItemDef", "OID", "CB.I.LBSTRESN").children("MeasurementUnitRef").map { $0["MeasurementUnitOID"]! }
        #expect(Set(standard) == Set(study.labTests.map { "MU.\($0.unit)" }) && standard.count == Set(standard).count)
        let tests = try find(mdv, "CodeList", "OID", "CB.CL.LBTESTCD").children("CodeListItem")
        #expect(tests.map { $0["CodedValue"]! } == study.labTests.map(\.code))
        #expect(tests.first { $0["CodedValue"] == "ALT" }?.child("Alias")?["Name"] == "1742-6")
        #expect(translated(try find(mdv, "ItemDef", "OID", "CB.I.LBTOXGR"), "Question") == "CTCAE grade (version 4.0)")

        // Units: those of the fields, then the labs' canonical ones not already there.
        let units = try #require(studyElement.child("BasicDefinitions")).children("MeasurementUnit")
        #expect(Array(units.map { $0["Name"]! }.prefix(5)) == ["U/L", "umol/L", "ratio", "%", "mmol/L"])
        #expect(units.allSatisfy { $0["OID"] == "MU.\($0["Name"]!)" && translated($0, "Symbol") == $0["Name"] })

        // The arms, when not blinded.
        #expect(try find(mdv, "CodeList", "OID", "CB.CL.ARMCD").children("CodeListItem").map { $0["CodedValue"]! } == ["msc_ev", "control"])
    }

    /// What both studies' definitions say, each thing in its place: events, forms, groups, items and code lists.
    @Test(arguments: [0, 1]) func bothStudiesMetadataFollowTheirDefinitions(index: Int) throws {
        let study = try studies()[index]
        let mdv = try #require(try parse(try export(study, [])).child("Study")?.child("MetaDataVersion"))
        #expect(mdv["OID"] == "MDV.\(study.code).v\(study.version)")
        // §3.1.1.3: the elements in the schema's order.
        let kinds = mdv.elements.map { $0.localName! }
        #expect(zip(kinds, kinds.dropFirst()).allSatisfy { order($0) <= order($1) }, "\(kinds)")
        #expect(mdv.children("StudyEventDef").map { $0["OID"]! } == study.visits.map { "SE.\($0.code)" } + ["CB.SE.ARM"])
        for visit in study.visits {
            let def = try find(mdv, "StudyEventDef", "OID", "SE.\(visit.code)")
            #expect(def.children("FormRef").map { $0["FormOID"]! } == study.forms.filter { $0.visits.contains(visit.code) }.map { "F.\($0.code)" } + ["CB.F.LB"])
        }
        #expect(mdv.children("FormDef").map { $0["OID"]! } == study.forms.map { "F.\($0.code)" } + ["CB.F.LB", "CB.F.ARM"])
        for form in study.forms {
            #expect(try find(mdv, "FormDef", "OID", "F.\(form.code)").children("ItemGroupRef").map { $0["ItemGroupOID"]! } == ["IG.\(form.code)"])
            let group = try find(mdv, "ItemGroupDef", "OID", "IG.\(form.code)")
            #expect(group.children("ItemRef").map { $0["ItemOID"]! } == form.fields.map { "I.\(form.code).\($0.code)" })
            #expect(group.children("ItemRef").map { $0["Mandatory"]! } == form.fields.map { $0.required == true ? "Yes" : "No" })
            for field in form.fields {
                let item = try find(mdv, "ItemDef", "OID", "I.\(form.code).\(field.code)")
                let expected = ["number": "float", "integer": "integer", "date": "date", "datetime": "datetime", "choice": "text", "yesno": "text", "text": "text"]
                #expect(item["DataType"] == expected[field.type.rawValue])
                #expect(translated(item, "Question") == field.label)
                if let choices = field.choices {
                    let list = try find(mdv, "CodeList", "OID", try #require(item.child("CodeListRef")?["CodeListOID"]))
                    #expect(list.children("CodeListItem").map { $0["CodedValue"]! } == choices.map(\.code))
                }
                #expect(item.children("Alias").first { $0["Context"] == "LOINC" }?["Name"] == field.loinc)
            }
        }
        // Every unit a numeric field names is defined once.
        let units = try #require(try parse(try export(study, [])).child("Study")?.child("BasicDefinitions")).children("MeasurementUnit").map { $0["Name"]! }
        let used = Set(study.forms.flatMap(\.fields).filter { $0.type == .number || $0.type == .integer }.compactMap(\.unit))
        #expect(used.isSubset(of: Set(units)) && units.count == Set(units).count)
    }

    private func order(_ kind: String) -> Int {
        ["Include", "Protocol", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList", "ImputationMethod", "Presentation", "ConditionDef", "MethodDef"]
            .firstIndex(of: kind) ?? 99
    }

    @Test func adminDataNamesTheUsersSitesAndMeaningsGiven() throws {
        let study = try second()
        let admin = try #require(try parse(try export(study, [])).child("AdminData"))
        #expect(admin["StudyOID"] == "S.UCMSC-ACLF")
        #expect(admin.elements.map { $0.localName! } == ["User", "User", "Location", "SignatureDef", "SignatureDef"])
        let ana = try find(admin, "User", "OID", "USR.ana.investigator")
        #expect(ana["UserType"] == "Investigator" && ana.child("LoginName")?.stringValue == "ana.investigator" && ana.child("FullName")?.stringValue == "Ana Investigator")
        #expect(ana.child("LocationRef")?["LocationOID"] == "LOC.PLAGH5")
        let site = try find(admin, "Location", "OID", "LOC.PLAGH5")
        #expect(site["Name"] == "The Fifth Medical Center, Chinese PLA General Hospital, Beijing" && site["LocationType"] == "Site")
        let version = try #require(site.child("MetaDataVersionRef"))
        #expect(version["StudyOID"] == "S.UCMSC-ACLF" && version["MetaDataVersionOID"] == "MDV.UCMSC-ACLF.v1" && version["EffectiveDate"] == "2026-01-01")
        let approve = try find(admin, "SignatureDef", "OID", "SD.approve")
        #expect(approve["Methodology"] == "Electronic" && approve.child("Meaning")?.stringValue == "approve")
        #expect(approve.child("LegalReason")?.stringValue == "I approve these data as accurate and complete")
        #expect(try find(admin, "SignatureDef", "OID", "SD.review").child("LegalReason")?.stringValue == "I have reviewed these data")
        // Meaning texts are the caller's: another statement is written as given.
        let other = ODMAdministration(users: [], sites: [], meanings: [ODMSignatureMeaning(code: "approve", statement: "Je confirme")])
        let data = try ODMWriter.document(study: study, administration: other, options: options(), subjects: [])
        #expect(try find(try parse(data), "SignatureDef", "OID", "SD.approve").child("LegalReason")?.stringValue == "Je confirme")
    }

    // MARK: Clinical data

    @Test func clinicalDataOfASubjectWorkedByHand() throws {
        let study = try first()
        let odm = try parse(try export(study, [builtInSubject(study)]))
        let clinical = try #require(odm.child("ClinicalData"))
        #expect(clinical["StudyOID"] == "S.MSC-EV-ACLF-LT" && clinical["MetaDataVersionOID"] == "MDV.MSC-EV-ACLF-LT.v1")
        let subject = try #require(clinical.child("SubjectData"))
        #expect(subject["SubjectKey"] == "001-001" && subject["TransactionType"] == nil)
        #expect(subject.child("SiteRef")?["LocationOID"] == "LOC.SYSU3")
        // Visits in protocol order, the allocation event last; a form without values (labs' albumin "") is no value.
        #expect(subject.children("StudyEventData").map { $0["StudyEventOID"]! } == ["SE.screening", "SE.transplant", "SE.baseline", "SE.safety_24h", "CB.SE.ARM"])
        let screening = try find(subject, "StudyEventData", "StudyEventOID", "SE.screening")
        #expect(screening.children("FormData").map { $0["FormOID"]! } == ["F.demographics", "F.consent", "F.labs", "CB.F.LB"])
        let demographics = try find(screening, "FormData", "FormOID", "F.demographics")
        let group = try #require(demographics.child("ItemGroupData"))
        #expect(group["ItemGroupOID"] == "IG.demographics" && group["ItemGroupRepeatKey"] == nil)
        #expect(group.children("ItemData").map { "\($0["ItemOID"]!)=\($0["Value"]!)" } == [
            "I.demographics.screening_date=2026-01-05", "I.demographics.birth_date=1976-01-01", "I.demographics.sex=M",
        ])
        // Datetimes as complete xs:dateTime values: seconds and a zone added, an offset kept.
        let labs = try find(screening, "FormData", "FormOID", "F.labs")
        #expect(try find(labs, "ItemData", "ItemOID", "I.labs.collected_at")["Value"] == "2026-01-05T07:00:00+08:00")
        #expect(labs.all("ItemData").map { $0["ItemOID"]! } == ["I.labs.collected_at", "I.labs.total_bilirubin", "I.labs.inr"])
        #expect(try find(screening, "ItemData", "ItemOID", "I.consent.signed_at")["Value"] == "2026-01-05T08:30:00Z")
        #expect(try find(subject, "ItemData", "ItemOID", "I.toxicity_24h.assessed_at")["Value"] == "2026-01-08T09:15:30Z")
        // The arm, with when.
        let arm = try find(subject, "StudyEventData", "StudyEventOID", "CB.SE.ARM")
        #expect(arm.all("ItemData").map { "\($0["ItemOID"]!)=\($0["Value"]!)" } == ["CB.I.ARMCD=msc_ev", "CB.I.RANDDTC=2026-01-06T10:00:00.000Z"])
    }

    @Test func labResultsAreRepeatingLBGroupsKeyedByTest() throws {
        let study = try first()
        let subject = try #require(try parse(try export(study, [builtInSubject(study)])).child("ClinicalData")?.child("SubjectData"))
        let screening = try find(subject, "StudyEventData", "StudyEventOID", "SE.screening")
        let lb = try find(screening, "FormData", "FormOID", "CB.F.LB")
        // In the catalogue's order of tests (BILI before INR), whatever order they came in.
        #expect(lb.children("ItemGroupData").map { "\($0["ItemGroupOID"]!) \($0["ItemGroupRepeatKey"]!)" } == ["CB.IG.LB BILI", "CB.IG.LB INR"])
        let bilirubin = lb.children("ItemGroupData")[0]
        #expect(bilirubin.children("ItemData").map { "\($0["ItemOID"]!)=\($0["Value"]!)" } == [
            "CB.I.LBTESTCD=BILI", "CB.I.LBDTC=2026-01-05T07:00:00.000Z", "CB.I.LBORRES=14.62", "CB.I.LBORRESU=mg/dL", "CB.I.LBSTRESN=250", "CB.I.LBTOXGR=3",
        ])
        #expect(try find(bilirubin, "ItemData", "ItemOID", "CB.I.LBSTRESN").child("MeasurementUnitRef")?["MeasurementUnitOID"] == "MU.umol/L")
        // The result's audit event is on its group, before the items.
        #expect(bilirubin.elements.first?.localName == "AuditRecord" && bilirubin.child("AuditRecord")?.child("SourceID")?.stringValue == "50")
        // No grade, no LBTOXGR; a tiny number without an exponent (ODM float is xs:decimal).
        let albumin = try find(try find(subject, "StudyEventData", "StudyEventOID", "SE.baseline"), "ItemGroupData", "ItemGroupRepeatKey", "ALB")
        #expect(try find(albumin, "ItemData", "ItemOID", "CB.I.LBSTRESN")["Value"] == "0.00001")
        #expect(try find(albumin, "ItemData", "ItemOID", "CB.I.LBORRES")["Value"] == "0.001")
        #expect(albumin.children("ItemData").count == 5 && albumin.child("AuditRecord") == nil)
    }

    @Test func auditRecordsAreOnTheItemDataTheyChanged() throws {
        let study = try first()
        let subject = try #require(try parse(try export(study, [builtInSubject(study)])).child("ClinicalData")?.child("SubjectData"))
        let sex = try find(subject, "ItemData", "ItemOID", "I.demographics.sex")
        // §3.1.4.1.1.1.1.1: one AuditRecord, first child; the event that gave the current value (sequence 42, not 10).
        #expect(sex.elements.map { $0.localName! } == ["AuditRecord"])
        let record = try #require(sex.child("AuditRecord"))
        #expect(record.elements.map { $0.localName! } == ["UserRef", "LocationRef", "DateTimeStamp", "ReasonForChange", "SourceID"])
        #expect(record.child("UserRef")?["UserOID"] == "USR.ana.investigator")
        #expect(record.child("LocationRef")?["LocationOID"] == "LOC.SYSU3")
        #expect(record.child("DateTimeStamp")?.stringValue == "2026-01-06T10:30:00.000Z")
        #expect(record.child("ReasonForChange")?.stringValue == "Typo & <fix>")
        #expect(record.child("SourceID")?.stringValue == "42")
        // A value without events has no AuditRecord; an event without a reason has no ReasonForChange.
        #expect(try find(subject, "ItemData", "ItemOID", "I.demographics.birth_date").elements.isEmpty)
        var one = builtInSubject(study)
        one.forms[0].audit = ["sex": [ODMAuditEvent(sequence: 7, occurredAt: "2026-01-05T09:00", user: "ben.monitor", site: "SYSU3")]]
        let only = try find(try parse(try export(study, [one])), "ItemData", "ItemOID", "I.demographics.sex").child("AuditRecord")
        #expect(only?.elements.map { $0.localName! } == ["UserRef", "LocationRef", "DateTimeStamp", "SourceID"])
        #expect(only?.child("DateTimeStamp")?.stringValue == "2026-01-05T09:00:00Z")
    }

    @Test func signaturesAreOnTheSubjectAndFormTheyCover() throws {
        let study = try first()
        let subject = try #require(try parse(try export(study, [builtInSubject(study)])).child("ClinicalData")?.child("SubjectData"))
        // §3.1.4.1: the casebook's signature before SiteRef.
        #expect(Array(subject.elements.map { $0.localName! }.prefix(2)) == ["Signature", "SiteRef"])
        let casebook = try #require(subject.child("Signature"))
        #expect(casebook.elements.map { $0.localName! } == ["UserRef", "LocationRef", "SignatureRef", "DateTimeStamp"])
        #expect(casebook.child("SignatureRef")?["SignatureOID"] == "SD.approve" && casebook.child("DateTimeStamp")?.stringValue == "2026-02-01T12:00:00.000Z")
        // §3.1.4.1.1.1: a form's signature before its item group; of two on one form, the later.
        let demographics = try find(subject, "FormData", "FormOID", "F.demographics")
        #expect(demographics.elements.map { $0.localName! } == ["Signature", "ItemGroupData"])
        #expect(demographics.child("Signature")?.child("SignatureRef")?["SignatureOID"] == "SD.approve")
        #expect(demographics.child("Signature")?.child("UserRef")?["UserOID"] == "USR.ana.investigator")
        // A signed form without values keeps its signature; forms without one have none.
        let transplant = try find(try find(subject, "StudyEventData", "StudyEventOID", "SE.transplant"), "FormData", "FormOID", "F.transplant")
        #expect(transplant.elements.map { $0.localName! } == ["Signature"])
        #expect(try find(subject, "FormData", "FormOID", "F.consent").child("Signature") == nil)
        // The order signatures come in does not matter.
        var reversed = builtInSubject(study)
        reversed.signatures.reverse()
        #expect(try export(study, [reversed]) == export(study, [builtInSubject(study)]))
    }

    @Test func markupInValuesIsEscapedAndReadsBackExactly() throws {
        let study = try first()
        let tricky = "v1 & \"final\" <2> > 1\ttab\nline"
        var subject = builtInSubject(study, key: "K&<\"key\">")
        subject.forms[1].values["form_version"] = tricky
        let data = try export(study, [subject])
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("Value=\"v1 &amp; &quot;final&quot; &lt;2&gt; &gt; 1&#9;tab&#10;line\""))
        #expect(text.contains("SubjectKey=\"K&amp;&lt;&quot;key&quot;&gt;\""))
        #expect(text.contains("<ReasonForChange>Typo &amp; &lt;fix&gt;</ReasonForChange>"))
        let odm = try parse(data)
        #expect(try find(odm, "ItemData", "ItemOID", "I.consent.form_version")["Value"] == tricky)
        #expect(odm.child("ClinicalData")?.child("SubjectData")?["SubjectKey"] == "K&<\"key\">")
    }

    @Test func aCharacterXMLCannotCarryRefusesThatSubjectAlone() throws {
        let study = try first()
        var data = Data()
        let writer = try ODMWriter(study: study, administration: administration(study), options: options()) { data.append(contentsOf: $0) }
        var bad = builtInSubject(study, key: "bad")
        bad.forms[1].values["form_version"] = "v1\u{1}"
        #expect(throws: ODMError.unrepresentableText(path: "bad/screening/consent.form_version")) { try writer.write(bad) }
        try writer.write(builtInSubject(study, key: "good"))
        try writer.finish()
        #expect(try parse(data).child("ClinicalData")?.children("SubjectData").map { $0["SubjectKey"]! } == ["good"])
    }

    @Test func theBlindedExportHasNoArm() throws {
        for study in try studies() {
            var subject = fullSubject(study, key: "S1")
            subject.allocation = ODMAllocation(arm: study.arms.last!.code, allocatedAt: at("2026-01-06T10:00Z"))
            let open = try parse(try export(study, [subject]))
            #expect(try find(open, "ItemData", "ItemOID", "CB.I.ARMCD")["Value"] == study.arms.last!.code)
            let blinded = try parse(try export(study, [subject], blinded: true))
            let armOIDs: Set<String> = ["CB.SE.ARM", "CB.F.ARM", "CB.IG.ARM", "CB.I.ARMCD", "CB.I.RANDDTC", "CB.CL.ARMCD"]
            #expect(Set(everyOID(open)).isSuperset(of: armOIDs))
            #expect(Set(everyOID(blinded)).isDisjoint(with: armOIDs))
            #expect(everyReference(blinded).allSatisfy { !armOIDs.contains($0.value) })
            #expect(blinded["Description"] == "Blinded: arms are left out")
            // No arm's code or name anywhere in the data.
            let values = Set(blinded.all("ItemData").compactMap { $0["Value"] })
            #expect(values.isDisjoint(with: study.arms.flatMap { [$0.code, $0.name] }))
            // An arm the study does not have is refused when it would be written, and never looked at when blinded.
            subject.allocation = ODMAllocation(arm: "no_such_arm")
            #expect(throws: ODMError.unknown(kind: "arm", value: "no_such_arm", path: "S1")) { try export(study, [subject]) }
            #expect(throws: Never.self) { try export(study, [subject], blinded: true) }
        }
    }

    // MARK: Streaming

    @Test func streamingToAFileGivesTheWholeDocumentsBytesOneSubjectAtATime() throws {
        let study = try second()
        let subjects = (1...25).map { fullSubject(study, key: String(format: "PLAGH5-%03d", $0)) }
        let whole = try ODMWriter.document(study: study, administration: administration(study), options: options(), subjects: subjects)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("odm-\(UUID().uuidString).xml")
        #expect(FileManager.default.createFile(atPath: url.path, contents: nil))
        defer { try? FileManager.default.removeItem(at: url) }
        let handle = try FileHandle(forWritingTo: url)
        let writer = try ODMWriter(study: study, administration: administration(study), options: options(threshold: 1), fileHandle: handle)
        try writer.start()
        for (index, subject) in subjects.enumerated() {
            try writer.write(subject)
            // Each subject is on disk once written: the writer holds none of them.
            let onDisk = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            #expect(onDisk.components(separatedBy: "</SubjectData>").count - 1 == index + 1)
        }
        try writer.finish()
        try handle.close()
        #expect(try Data(contentsOf: url) == whole)

        // The sink only ever gets whole subjects: no chunk ends inside one.
        var chunks: [[UInt8]] = []
        let chunked = try ODMWriter(study: study, administration: administration(study), options: options(threshold: 1)) { chunks.append($0) }
        for subject in subjects { try chunked.write(subject) }
        try chunked.finish()
        #expect(chunks.count == subjects.count + 2)
        #expect(chunks.dropFirst().dropLast().allSatisfy { String(decoding: $0, as: UTF8.self).hasSuffix("</SubjectData>\n") })
        #expect(Data(chunks.joined()) == whole)
    }

    @Test func theSameInputGivesTheSameBytesWhateverItsOrder() throws {
        let study = try first()
        var shuffled = builtInSubject(study)
        shuffled.forms.reverse()
        shuffled.labs.reverse()
        shuffled.forms[3].audit["sex"]?.reverse()
        #expect(try export(study, [shuffled]) == export(study, [builtInSubject(study)]))
    }

    /// §2.13 Data Formats: float -?digit+(.digit+)?, integer -?digit+, datetime complete with seconds (and here a zone,
    /// as Casebook's instants without one are UTC).
    @Test func valuesInODMsDataFormats() {
        #expect(ODMValue.decimal("1e-05") == "0.00001")
        #expect(ODMValue.decimal("1.5e+20") == "150000000000000000000")
        #expect(ODMValue.decimal("+.5") == "0.5")
        #expect(ODMValue.decimal("1.") == "1")
        #expect(ODMValue.decimal("-12.25") == "-12.25")
        #expect(ODMValue.decimal("0x10") == nil && ODMValue.decimal("inf") == nil && ODMValue.decimal("1e999") == nil && ODMValue.decimal("") == nil)
        #expect(ODMValue.integer("+7") == "7" && ODMValue.integer("-3") == "-3" && ODMValue.integer("7.0") == nil)
        #expect(ODMValue.dateTime("2026-01-02T03:04") == "2026-01-02T03:04:00Z")
        #expect(ODMValue.dateTime("2026-01-02T3:04:05.25+8:00") == "2026-01-02T03:04:05.25+08:00")
        #expect(ODMValue.dateTime("2026-01-02T03:04:05-05:30") == "2026-01-02T03:04:05-05:30")
        #expect(ODMValue.dateTime("2026-02-30T00:00") == nil && ODMValue.dateTime("2026-01-02") == nil && ODMValue.dateTime("2026-01-02T25:00") == nil)
        #expect(ODMValue.isDate("2024-02-29") && !ODMValue.isDate("2026-02-29") && !ODMValue.isDate("2026-1-5"))
    }

    // MARK: References

    @Test(arguments: [0, 1]) func everyOIDIsUniqueAndEveryReferenceNamesOneOfTheRightKind(index: Int) throws {
        let study = try studies()[index]
        let odm = try parse(try export(study, [fullSubject(study, key: "S1"), fullSubject(study, key: "S2")]))
        var kinds: [String: String] = [:]
        var repeated: [String] = []
        for element in odm.descendants where element["OID"] != nil {
            if kinds.updateValue(element.localName!, forKey: element["OID"]!) != nil { repeated.append(element["OID"]!) }
        }
        #expect(repeated.isEmpty, "repeated OIDs: \(repeated)")
        #expect(kinds.count > 100)
        let expected = [
            "StudyOID": "Study", "MetaDataVersionOID": "MetaDataVersion", "StudyEventOID": "StudyEventDef", "FormOID": "FormDef", "ItemGroupOID": "ItemGroupDef",
            "ItemOID": "ItemDef", "CodeListOID": "CodeList", "MeasurementUnitOID": "MeasurementUnit", "UserOID": "User", "LocationOID": "Location",
            "SignatureOID": "SignatureDef",
        ]
        let references = everyReference(odm)
        #expect(Set(references.map(\.attribute)) == Set(expected.keys))
        for reference in references {
            #expect(kinds[reference.value] == expected[reference.attribute], "\(reference.attribute)=\(reference.value)")
        }
        // And the clinical data only uses an item in the group and form that hold it.
        for group in odm.child("ClinicalData")!.all("ItemGroupData") {
            let def = try find(odm, "ItemGroupDef", "OID", group["ItemGroupOID"]!)
            let allowed = Set(def.children("ItemRef").map { $0["ItemOID"]! })
            #expect(group.children("ItemData").allSatisfy { allowed.contains($0["ItemOID"]!) })
        }
    }

    @Test(arguments: [0, 1]) func everyValueFitsItsItemsDataTypeAndCodeList(index: Int) throws {
        let study = try studies()[index]
        let odm = try parse(try export(study, [fullSubject(study, key: "S1")]))
        let patterns = [
            // §2.13 Data Formats.
            "integer": #"^-?[0-9]+$"#, "float": #"^-?[0-9]+(\.[0-9]+)?$"#, "date": #"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"#,
            "datetime": #"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"#,
        ]
        var checked = 0
        for data in odm.child("ClinicalData")!.all("ItemData") {
            let def = try find(odm, "ItemDef", "OID", data["ItemOID"]!)
            let value = try #require(data["Value"])
            if let pattern = patterns[def["DataType"]!] {
                #expect(value.range(of: pattern, options: .regularExpression) != nil, "\(data["ItemOID"]!)=\(value)")
            }
            if let list = def.child("CodeListRef")?["CodeListOID"] {
                #expect(try find(odm, "CodeList", "OID", list).children("CodeListItem").contains { $0["CodedValue"] == value })
            }
            checked += 1
        }
        #expect(checked == study.forms.map(\.fields.count).reduce(0, +) + study.labTests.count * 6 + 2)
        for stamp in odm.all("DateTimeStamp") { #expect(stamp.stringValue!.range(of: patterns["datetime"]!, options: .regularExpression) != nil) }
    }

    // MARK: Refusals

    @Test func whatCannotBeWrittenIsRefusedWithWhere() throws {
        let study = try first()
        func refuse(_ error: ODMError, _ change: (inout ODMSubject) -> Void) {
            var subject = builtInSubject(study)
            change(&subject)
            #expect(throws: error) { try export(study, [subject]) }
        }
        refuse(.unknown(kind: "field", value: "weight", path: "001-001/screening/demographics")) { $0.forms[0].values["weight"] = "70" }
        refuse(.unknown(kind: "visit", value: "week_99", path: "001-001/week_99/demographics")) { $0.forms[0].visit = "week_99" }
        refuse(.formNotAtVisit(form: "demographics", visit: "day_7", path: "001-001/day_7/demographics")) { $0.forms[0].visit = "day_7" }
        refuse(.duplicate(kind: "form at a visit", value: "001-001/screening/demographics")) { $0.forms.append($0.forms[0]) }
        refuse(.invalidValue(path: "001-001/screening/demographics.sex", value: "X", rule: "is not in the code list CL.demographics.sex")) {
            $0.forms[0].values["sex"] = "X"
        }
        refuse(.invalidValue(path: "001-001/screening/labs.total_bilirubin", value: "high", rule: "is not a decimal number")) {
            $0.forms[2].values["total_bilirubin"] = "high"
        }
        refuse(.invalidValue(path: "001-001/screening/demographics.birth_date", value: "1976-02-30", rule: "is not a date as yyyy-MM-dd")) {
            $0.forms[0].values["birth_date"] = "1976-02-30"
        }
        refuse(.invalidValue(path: "001-001/screening/consent.form_version", value: String(repeating: "v", count: 2001), rule: "is longer than the item's Length, 2000")) {
            $0.forms[1].values["form_version"] = String(repeating: "v", count: 2001)
        }
        refuse(.invalidValue(path: "001-001/screening/CB.F.LB/BILI.LBORRESU", value: String(repeating: "u", count: 65), rule: "is longer than the item's Length, 64")) {
            $0.labs[0].enteredUnit = String(repeating: "u", count: 65)
        }
        refuse(.unknown(kind: "user", value: "mallory", path: "001-001/screening/demographics.sex")) {
            $0.forms[0].audit["sex"]![0].user = "mallory"
        }
        refuse(.timeAfterCreation(path: "001-001/screening/demographics.sex audit 42", time: "2028-01-01T00:00:00Z")) {
            $0.forms[0].audit["sex"]![0].occurredAt = "2028-01-01T00:00"
        }
        refuse(.unknown(kind: "signature meaning", value: "author", path: "001-001")) { $0.signatures[0].meaning = "author" }
        refuse(.unknown(kind: "site", value: "ELSEWHERE", path: "001-001")) { $0.site = "ELSEWHERE" }
        refuse(.unknown(kind: "lab test", value: "XYZ", path: "001-001/screening/CB.F.LB")) { $0.labs[0].test = "XYZ" }
        refuse(.invalidValue(path: "001-001/screening/CB.F.LB/BILI", value: "mg/dL", rule: "is not the test's canonical unit, umol/L")) { $0.labs[0].unit = "mg/dL" }
        #expect(throws: ODMError.duplicate(kind: "subject", value: "001-001")) { try export(study, [builtInSubject(study), builtInSubject(study)]) }
        // Administration data that does not hold together is refused before anything is written.
        var admin = administration(study)
        admin.users.append(admin.users[0])
        #expect(throws: ODMError.duplicate(kind: "user", value: "ana.investigator")) {
            try ODMWriter(study: study, administration: admin, options: options()) { _ in }
        }
        var late = options()
        late.asOf = created.addingTimeInterval(1)
        #expect(throws: ODMError.timeAfterCreation(path: "AsOfDateTime", time: "2027-01-15T08:00:01.000Z")) {
            try ODMWriter.document(study: study, administration: administration(study), options: late, subjects: [])
        }
    }

    // MARK: The schema

    /// The schema's own content models, read from the reference XSD, hold every element's children in order and count,
    /// its attributes and their enumerated values.
    @Test(.enabled(if: hasReference, "needs ../shared/reference/xsd/odm-1.3.2 (absent in a fresh clone)"), arguments: [0, 1])
    func bothStudiesFollowTheReferenceSchemasContentModels(index: Int) throws {
        let schema = try ODMSchemaModel(foundationXSD)
        let study = try studies()[index]
        for blinded in [false, true] {
            let odm = try parse(try export(study, [fullSubject(study, key: "S1"), builtInSubjectOrFull(study)], blinded: blinded))
            let problems = schema.problems(in: odm)
            #expect(problems.isEmpty, "\(problems.prefix(5))")
        }
    }

    /// The schema check itself finds what breaks the content models.
    @Test(.enabled(if: hasReference, "needs ../shared/reference/xsd/odm-1.3.2 (absent in a fresh clone)"))
    func theSchemaCheckFindsBrokenDocuments() throws {
        let schema = try ODMSchemaModel(foundationXSD)
        let study = try first()
        let text = String(decoding: try export(study, [builtInSubject(study)]), as: UTF8.self)
        for (broken, why) in [
            (text.replacingOccurrences(of: "Repeating=\"No\" Type=\"Scheduled\"", with: "Repeating=\"Maybe\" Type=\"Scheduled\""), "an enumeration"),
            (text.replacingOccurrences(of: " Mandatory=\"Yes\"", with: ""), "a required attribute"),
            (text.replacingOccurrences(of: "<SourceID>42</SourceID>", with: "<SourceID>42</SourceID><UserRef UserOID=\"USR.ben.monitor\"/>"), "order"),
            (text.replacingOccurrences(of: "<ProtocolName>MSC-EV-ACLF-LT</ProtocolName>", with: ""), "a missing child"),
            (text.replacingOccurrences(of: "<SiteRef LocationOID=\"LOC.SYSU3\"/>", with: "<SiteRef LocationOID=\"LOC.SYSU3\"/><SiteRef LocationOID=\"LOC.SYSU3\"/>"), "a second"),
        ] {
            #expect(broken != text)
            #expect(!schema.problems(in: try parse(Data(broken.utf8))).isEmpty, "\(why) not found")
        }
    }

    /// lxml against the XSD itself, with odmlib's checks where installed (scripts/check_odm.py).
    @Test(.enabled(if: hasReference && Python.withLXML != nil, "needs ../shared/reference and a Python with lxml (CASEBOOK_PYTHON, .venv or python3)"), arguments: [0, 1])
    func bothStudiesAreValidAgainstTheXSD(index: Int) throws {
        let study = try studies()[index]
        for blinded in [false, true] {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("odm-\(UUID().uuidString).xml")
            defer { try? FileManager.default.removeItem(at: url) }
            try export(study, [fullSubject(study, key: "S1"), builtInSubjectOrFull(study)], blinded: blinded).write(to: url)
            let (status, output) = try Python.run([root.appendingPathComponent("scripts/check_odm.py").path, url.path])
            #expect(status == 0, "\(output)")
            #expect(output.contains("valid against"))
        }
    }
}

/// The built-in study's worked subject, or for another study a second full one.
private func builtInSubjectOrFull(_ study: StudyDefinition) -> ODMSubject {
    study.code == "MSC-EV-ACLF-LT" ? builtInSubject(study) : fullSubject(study, key: "S2")
}

private func everyOID(_ odm: XMLElement) -> [String] { ([odm] + odm.descendants).compactMap { $0["OID"] } }

private func everyReference(_ odm: XMLElement) -> [(attribute: String, value: String)] {
    odm.descendants.flatMap { element in
        (element.attributes ?? []).compactMap { attribute -> (String, String)? in
            guard let name = attribute.name, name.hasSuffix("OID"), name != "OID", name != "FileOID", name != "PriorFileOID" else { return nil }
            return (name, attribute.stringValue ?? "")
        }
    }
}

// MARK: - The schema's content models

/// Enough of XML Schema to hold a document to ODM1-3-2-foundation.xsd's content models: sequences, choices and groups
/// of element references with their occurrences, attribute groups with required attributes, enumerated simple types.
private struct ODMSchemaModel {
    struct Slot {
        var names: Set<String>
        var min: Int
        var max: Int?  // nil: unbounded
    }
    struct Attribute {
        var required: Bool
        var type: String
    }

    var content: [String: [Slot]] = [:]
    var attributes: [String: [String: Attribute]] = [:]
    var enumerations: [String: Set<String>] = [:]

    init(_ url: URL) throws {
        let schema = try #require(try XMLDocument(contentsOf: url).rootElement())
        var types: [String: XMLElement] = [:], groups: [String: XMLElement] = [:], attributeGroups: [String: XMLElement] = [:]
        var elements: [(String, XMLElement)] = []
        for node in schema.elements {
            guard let name = node["name"] else { continue }
            switch node.localName {
            case "complexType": types[name] = node
            case "group": groups[name] = node
            case "attributeGroup": attributeGroups[name] = node
            case "simpleType":
                let values = node.all("enumeration").compactMap { $0["value"] }
                if !values.isEmpty { enumerations[name] = Set(values) }
            case "element": elements.append((name, node))
            default: break
            }
        }
        func occurs(_ node: XMLElement) -> (Int, Int?) {
            (Int(node["minOccurs"] ?? "1") ?? 1, node["maxOccurs"] == "unbounded" ? nil : Int(node["maxOccurs"] ?? "1"))
        }
        func slots(_ node: XMLElement) -> [Slot] {
            var result: [Slot] = []
            for child in node.elements {
                let (min, max) = occurs(child)
                switch child.localName {
                case "element": result.append(Slot(names: [child["ref"]!], min: min, max: max))
                case "sequence": result += slots(child).map { Slot(names: $0.names, min: $0.min * min, max: max == nil ? nil : $0.max) }
                case "group": result += slots(groups[child["ref"]!]!).map { Slot(names: $0.names, min: $0.min * min, max: max == nil ? nil : $0.max) }
                case "choice":
                    let members = slots(child)
                    guard !members.isEmpty else { continue }
                    let unbounded = max == nil || members.contains { $0.max == nil || $0.max! > 1 }
                    result.append(Slot(names: members.reduce(into: []) { $0.formUnion($1.names) }, min: min * (members.map(\.min).min() ?? 0), max: unbounded ? nil : 1))
                default: break
                }
            }
            return result
        }
        func attributesOf(_ node: XMLElement) -> [String: Attribute] {
            var result: [String: Attribute] = [:]
            for child in node.all("attribute") {
                guard let name = child["name"] ?? child["ref"] else { continue }
                result[name] = Attribute(required: child["use"] == "required", type: child["type"] ?? "")
            }
            for reference in node.all("attributeGroup") {
                guard let group = reference["ref"].flatMap({ attributeGroups[$0] }) else { continue }
                result.merge(attributesOf(group)) { a, _ in a }
            }
            return result
        }
        for (name, element) in elements {
            let type = element["type"].flatMap { types[$0] } ?? element.child("complexType")
            guard let type else { continue }
            content[name] = slots(type)
            attributes[name] = attributesOf(type)
        }
    }

    func problems(in root: XMLElement) -> [String] {
        var found: [String] = []
        check(root, path: "/ODM", into: &found)
        return found
    }

    private func check(_ element: XMLElement, path: String, into found: inout [String]) {
        let name = element.localName ?? ""
        guard let slots = content[name] else { return found.append("\(path): element not in the schema") }
        let allowed = attributes[name] ?? [:]
        for attribute in element.attributes ?? [] {
            let key = attribute.name ?? ""
            guard let definition = allowed[key] else { found.append("\(path): attribute \(key) not allowed"); continue }
            if let values = enumerations[definition.type], !values.contains(attribute.stringValue ?? "") {
                found.append("\(path): \(key)=\(attribute.stringValue ?? "") not one of \(values.sorted())")
            }
        }
        for (key, definition) in allowed where definition.required && element[key] == nil {
            found.append("\(path): required attribute \(key) missing")
        }
        var position = 0
        var counts = Array(repeating: 0, count: slots.count)
        for child in element.elements {
            let childName = child.localName ?? ""
            guard let slot = (position..<slots.count).first(where: { slots[$0].names.contains(childName) }) else {
                found.append("\(path): \(childName) not allowed here (out of order or unknown)")
                continue
            }
            position = slot
            counts[slot] += 1
            if let max = slots[slot].max, counts[slot] > max { found.append("\(path): more than \(max) \(childName)") }
            check(child, path: "\(path)/\(childName)", into: &found)
        }
        for (index, slot) in slots.enumerated() where counts[index] < slot.min {
            found.append("\(path): missing \(slot.names.sorted().joined(separator: "|"))")
        }
    }
}

// MARK: - Python, for lxml

private enum Python {
    /// A Python with lxml: CASEBOOK_PYTHON, the repository's .venv, or python3 on the path.
    static let withLXML: String? = {
        let environment = ProcessInfo.processInfo.environment
        let path = (environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/python3" }
        let candidates = [environment["CASEBOOK_PYTHON"]].compactMap { $0 } + [root.appendingPathComponent(".venv/bin/python").path] + path
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) && (try? run(["-c", "import lxml"], python: $0).status) == 0 }
    }()

    static func run(_ arguments: [String], python: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python ?? withLXML!)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
#endif
