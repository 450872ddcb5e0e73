import Foundation
import Testing
import TrialDomain
import TrialStandards

// The HL7 FHIR R4 export: a `collection` Bundle written entry by entry, checked against both study definitions, the lab
// catalogue, ../shared/reference/LOINC.md and the official R4 examples in ../shared/reference/fhir-r4.

/// The checkout, and ../shared/reference beside it (as TestSupport's `Reference.root` finds it; worked out here so that
/// this file needs nothing but TrialStandards).
private let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let reference = checkout.deletingLastPathComponent().appendingPathComponent("shared/reference")
private let fhirExamples = reference.appendingPathComponent("fhir-r4")
private let loincNotes = reference.appendingPathComponent("LOINC.md")

private func present(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

private let base = "https://casebook.example.org/fhir"

private func second() throws -> StudyDefinition {
    try StudyFile.read(try String(contentsOf: checkout.appendingPathComponent("studies/ucmsc-aclf.yaml"), encoding: .utf8))
}

private func at(_ iso: String) throws -> Date {
    try #require(ISO8601DateFormatter().date(from: iso), "\(iso)")
}

// MARK: JSON navigation

private func json(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

private func json(_ value: FHIRJSON) throws -> [String: Any] { try json(try value.serialized()) }

private func resources(_ bundle: [String: Any], _ type: String? = nil) -> [[String: Any]] {
    ((bundle["entry"] as? [[String: Any]]) ?? []).compactMap { $0["resource"] as? [String: Any] }
        .filter { type == nil || $0["resourceType"] as? String == type }
}

private func codings(_ concept: Any?) -> [[String: Any]] { ((concept as? [String: Any])?["coding"] as? [[String: Any]]) ?? [] }

/// Every `reference` string anywhere in a value.
private func references(in value: Any) -> [String] {
    if let object = value as? [String: Any] {
        return ((object["reference"] as? String).map { [$0] } ?? []) + object.values.flatMap(references(in:))
    }
    if let array = value as? [Any] { return array.flatMap(references(in:)) }
    return []
}

private func text(_ value: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
}

// MARK: a small export of the second study, built from its definition

private struct Export {
    let study: StudyDefinition
    let subjects: [FHIRSubject]
    let doses: [FHIRDose]
    let labs: [FHIRLab]
    let events: [FHIRAdverseEvent]

    /// Two participants allocated (hUC-MSC and placebo) and one who failed screening; each one's first planned dose
    /// given as the definition plans it, the placebo participant's second not given; labs with and without ranges;
    /// two adverse events of the definition's terms.
    init() throws {
        study = try second()
        let active = try #require(study.arms.first { $0.code == "huc_msc" })
        let placebo = try #require(study.arms.first { $0.code == "placebo" })
        subjects = [
            FHIRSubject(
                subject: "UCMSC-ACLF-PLAGH5-001", status: .randomized, sex: .male, birthYear: FHIRSubject.year(ofBirthDate: "1976-03-14"),
                assignedArm: active.code, start: try at("2026-01-05T08:00:00Z")),
            FHIRSubject(
                subject: "UCMSC-ACLF-PLAGH5-002", status: .randomized, sex: .female, birthYear: 1981, assignedArm: placebo.code,
                start: try at("2026-01-06T08:00:00Z")),
            FHIRSubject(subject: "UCMSC-ACLF-PLAGH5-003", status: .screenFailed, sex: .male, birthYear: 1990),
        ]
        func given(_ id: String, _ subject: String, _ planned: PlannedDose, _ start: String) throws -> FHIRDose {
            FHIRDose(
                id: id, subject: subject, dose: planned.code, product: planned.product, given: true, start: try at(start),
                end: try at(start).addingTimeInterval(3600), amount: planned.amount, unit: planned.unit, volume: planned.volume,
                volumeUnit: planned.volumeUnit, route: planned.route)
        }
        let activePlan = try #require(active.doses), placeboPlan = try #require(placebo.doses)
        doses = [
            try given("dose-1", "UCMSC-ACLF-PLAGH5-001", activePlan[0], "2026-01-07T09:00:00Z"),
            try given("dose-2", "UCMSC-ACLF-PLAGH5-002", placeboPlan[0], "2026-01-08T09:00:00Z"),
            FHIRDose(
                id: "dose-3", subject: "UCMSC-ACLF-PLAGH5-002", dose: placeboPlan[1].code, product: placeboPlan[1].product, given: false,
                start: try at("2026-01-15T09:00:00Z"), route: placeboPlan[1].route, skipReason: "The pre-dose check did not pass"),
        ]
        labs = [
            FHIRLab(id: "lab-1", subject: "UCMSC-ACLF-PLAGH5-001", test: "BILI", value: 120, collectedAt: try at("2026-01-07T07:00:00Z")),
            FHIRLab(id: "lab-2", subject: "UCMSC-ACLF-PLAGH5-001", test: "ALT", value: 85, collectedAt: try at("2026-01-07T07:00:00Z"), high: 40),
            FHIRLab(id: "lab-3", subject: "UCMSC-ACLF-PLAGH5-002", test: "ALB", value: 30.5, collectedAt: try at("2026-01-08T07:00:00Z"), low: 35),
            FHIRLab(
                id: "lab-4", subject: "UCMSC-ACLF-PLAGH5-002", test: "SODIUM", value: 140, collectedAt: try at("2026-01-08T07:00:00Z"), low: 135,
                high: 145),
            FHIRLab(id: "lab-5", subject: "UCMSC-ACLF-PLAGH5-002", test: "PTACT", value: 38, collectedAt: try at("2026-01-08T07:00:00Z")),
        ]
        let terms = try #require(study.adverseEventTerms)
        let reaction = try #require(terms.first { $0.term == "Infusion related reaction" })
        let fever = try #require(terms.first { $0.term == "Fever" })
        events = [
            FHIRAdverseEvent(
                id: "ae-1", subject: "UCMSC-ACLF-PLAGH5-001", term: reaction.term, meddra: reaction.meddra, ctcaeVersion: reaction.version, grade: 2,
                onsetAt: try at("2026-01-07T10:30:00Z"), awareAt: try at("2026-01-07T10:45:00Z"), recordedAt: try at("2026-01-07T11:00:00Z"),
                serious: false, attribution: .possible, suspectDoses: ["dose-1"], outcome: "recovered"),
            FHIRAdverseEvent(
                id: "ae-2", subject: "UCMSC-ACLF-PLAGH5-002", term: fever.term, meddra: fever.meddra, ctcaeVersion: fever.version, grade: 3,
                onsetAt: try at("2026-01-09T02:00:00Z"), serious: true, seriousness: [.hospitalization], attribution: .unlikely,
                outcome: "recovering"),
        ]
    }

    func options(blinded: Bool) -> FHIRExportOptions { FHIRExportOptions(base: base, blinded: blinded) }

    /// The bundle as the writer streams it, with each piece the sink received.
    func stream(blinded: Bool) throws -> (bytes: Data, pieces: [Data], counts: [String: Int]) {
        var pieces: [Data] = []
        let counts = try FHIRBundle.write(
            study: study, options: options(blinded: blinded), subjects: subjects, doses: doses, labs: labs, events: events
        ) { pieces.append($0) }
        return (pieces.reduce(Data(), +), pieces, counts)
    }

    func document(blinded: Bool) throws -> FHIRJSON {
        try FHIRBundle.document(study: study, options: options(blinded: blinded), subjects: subjects, doses: doses, labs: labs, events: events)
    }
}

@Suite struct FHIRTests {
    // MARK: units

    @Test func catalogueUnitsMapToUCUM() throws {
        // The table, for the unit strings Casebook writes.
        #expect(UCUM.code(for: "umol/L") == "umol/L")
        #expect(UCUM.code(for: "µmol/L") == "umol/L")
        #expect(UCUM.code(for: "U/L") == "U/L")
        #expect(UCUM.code(for: "10^9/L") == "10*9/L")
        #expect(UCUM.code(for: "ratio") == "{ratio}")
        #expect(UCUM.code(for: "%") == "%")
        #expect(UCUM.code(for: "mmol/L") == "mmol/L")
        #expect(UCUM.code(for: "g/L") == "g/L")
        #expect(UCUM.code(for: "cells") == "{cells}")
        // Every canonical unit of the catalogue, and every unit a dose of either study is planned in, has a code, and
        // every code is written in UCUM's ASCII form (no caret for powers, no micro sign, no spaces).
        let doseUnits = try [StudyFile.builtIn(), second()].flatMap { $0.arms.flatMap { $0.doses ?? [] } }.map(\.unit)
        for unit in Set(LabCatalogue.tests.map(\.unit) + doseUnits.filter { $0 != "infusion" }) {
            let code = try #require(UCUM.code(for: unit), "no UCUM code for '\(unit)'")
            #expect(code.allSatisfy { $0.isASCII && $0 != " " && $0 != "^" }, "\(unit) → \(code)")
        }
        for (unit, code) in UCUM.codes {
            #expect(!code.contains("^") && !code.contains("µ") && !code.contains("μ") && !code.contains(" "), "\(unit) → \(code)")
        }
    }

    @Test func aUnitWithoutUCUMCodeIsWrittenAsTextOnly() throws {
        // The placebo is planned as 1 "infusion", which UCUM has no code for: qty-3 forbids a code without its system,
        // so the dose quantity carries the unit as text and neither.
        #expect(UCUM.code(for: "infusion") == nil)
        let export = try Export()
        let bundle = try json(try export.document(blinded: false))
        let placebo = try #require(resources(bundle, "MedicationAdministration").first { ($0["status"] as? String) == "completed"
            && ((($0["medicationCodeableConcept"] as? [String: Any])?["text"] as? String)?.hasPrefix("Placebo") ?? false) })
        let dose = try #require((placebo["dosage"] as? [String: Any])?["dose"] as? [String: Any])
        #expect(dose["unit"] as? String == "infusion")
        #expect(dose["code"] == nil && dose["system"] == nil)
        let active = try #require(resources(bundle, "MedicationAdministration").first { (($0["medicationCodeableConcept"] as? [String: Any])?["text"] as? String) == "hUC-MSC" })
        let cells = try #require((active["dosage"] as? [String: Any])?["dose"] as? [String: Any])
        #expect(cells["system"] as? String == UCUM.system)
        #expect(cells["code"] as? String == "{cells}")
        #expect((cells["value"] as? NSNumber)?.doubleValue == 150_000_000)
    }

    @Test(.enabled(if: present(fhirExamples), "needs ../shared/reference/fhir-r4 beside the checkout"))
    func unitCodesAgreeWithTheOfficialExamples() throws {
        // Platelets (777-3) in Bundle-ghp.json and glucose in mmol/L in Observation-f001.json: the UCUM code the
        // official examples give for the unit is the one the table gives for Casebook's spelling of it.
        let ghp = try json(try Data(contentsOf: fhirExamples.appendingPathComponent("Bundle-ghp.json")))
        let platelets = try #require(resources(ghp, "Observation").first { codings($0["code"]).contains { $0["code"] as? String == "777-3" } })
        let quantity = try #require(platelets["valueQuantity"] as? [String: Any])
        #expect(quantity["code"] as? String == UCUM.code(for: try #require(LabCatalogue.test("PLAT")).unit))
        let f001 = try json(try Data(contentsOf: fhirExamples.appendingPathComponent("Observation-f001.json")))
        #expect((f001["valueQuantity"] as? [String: Any])?["code"] as? String == UCUM.code(for: "mmol/L"))
    }

    // MARK: blinding

    @Test func aBlindedBundleNamesNoArmAndNoIntervention() throws {
        let export = try Export()
        let open = try json(try export.stream(blinded: false).bytes)
        let blinded = try json(try export.stream(blinded: true).bytes)
        let armNames = export.study.arms.map(\.name), products = export.study.interventions.map(\.name)

        // Unblinded, the arms and products are there: the blinded checks below could fail.
        let openStudy = try #require(resources(open, "ResearchStudy").first)
        #expect(((openStudy["arm"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String } == armNames)
        #expect(resources(open, "ResearchSubject").compactMap { $0["assignedArm"] as? String } == ["hUC-MSC", "Placebo"])
        let openMedications = resources(open, "MedicationAdministration").compactMap {
            ($0["medicationCodeableConcept"] as? [String: Any])?["text"] as? String
        }
        #expect(Set(openMedications) == Set(products))
        #expect(resources(open, "MedicationAdministration").contains { $0["dosage"] != nil })

        // Blinded: no arm anywhere, no product in any participant's resource, every administration the same mask.
        let study = try #require(resources(blinded, "ResearchStudy").first)
        #expect(study["arm"] == nil && study["focus"] == nil)
        for subject in resources(blinded, "ResearchSubject") {
            #expect(subject["assignedArm"] == nil && subject["actualArm"] == nil)
        }
        let medications = resources(blinded, "MedicationAdministration")
        #expect(medications.count == export.doses.count)
        for medication in medications {
            #expect(medication["dosage"] == nil)
            #expect((medication["medicationCodeableConcept"] as? [String: Any])?["text"] as? String == "Masked study product")
            #expect(((medication["meta"] as? [String: Any])?["security"] as? [[String: Any]])?.first?["code"] as? String == "MASKED")
        }
        for type in ["ResearchSubject", "Patient", "Observation", "AdverseEvent", "MedicationAdministration"] {
            for resource in resources(blinded, type) {
                let serialized = try text(resource)
                for name in armNames + products {
                    #expect(!serialized.contains(name), "\(type) names '\(name)' in a blinded export")
                }
            }
        }
    }

    // MARK: streaming

    @Test func theStreamIsTheWholeDocumentWrittenEntryByEntry() throws {
        let export = try Export()
        for blinded in [false, true] {
            let (bytes, pieces, counts) = try export.stream(blinded: blinded)
            let document = try export.document(blinded: blinded)
            // Byte for byte the whole-document encoding.
            #expect(bytes == (try document.serialized()))
            // One piece per entry, plus the opening and the closing: never the bundle at once.
            let entries = export.subjects.count * 2 + 1 + export.doses.count + export.labs.count + export.events.count
            #expect(pieces.count == entries + 2)
            #expect(pieces.map(\.count).max()! < bytes.count / 4)
            #expect(counts == ["ResearchStudy": 1, "ResearchSubject": 3, "Patient": 3, "MedicationAdministration": 3, "Observation": 5, "AdverseEvent": 2])
            // Foundation's own encoder, keys sorted, reads back to the same JSON: the writer's escaping and numbers agree.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let foundation = try JSONSerialization.jsonObject(with: try encoder.encode(document))
            #expect((try JSONSerialization.jsonObject(with: bytes) as? NSDictionary)?.isEqual(foundation) == true)
            // And the same data gives the same bytes again.
            #expect(try export.stream(blinded: blinded).bytes == bytes)
        }
    }

    @Test func stringsAndNumbersAreWrittenAsJSONReadsThem() throws {
        // RFC 8259 §7: quote, backslash and control characters escaped; other characters, "/" and non-ASCII, as they are.
        let text = "a\"b\\c\nd\u{01}\u{1F}é µ/"
        let bytes = try FHIRJSON.string(text).serialized()
        #expect(String(decoding: bytes, as: UTF8.self) == #""a\"b\\c\nd\u0001\u001fé µ/""#)
        #expect(try JSONSerialization.jsonObject(with: bytes, options: .fragmentsAllowed) as? String == text)
        // Numbers read back to the same Double; integral ones without a fraction; no NaN.
        for value in [0, 17.1, 0.1 + 0.2, 150_000_000, 1e10, -3.25, 1e-7, 1.5e300] {
            let written = String(decoding: try FHIRJSON.number(value).serialized(), as: UTF8.self)
            #expect(Double(written) == value, "\(written)")
            // Foundation's reader on Linux rounds some 17-digit decimals in the last place: a number, within that.
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8), options: .fragmentsAllowed) as? NSNumber)
            #expect(abs(parsed.doubleValue - value) <= abs(value) * 1e-15, "\(written)")
            if value == value.rounded() && abs(value) < 1e15 { #expect(!written.contains(".") && !written.contains("e"), "\(written)") }
        }
        #expect(throws: FHIRJSON.NotANumber.self) { try FHIRJSON.number(.infinity).serialized() }
    }

    @Test func keysAreSortedInEveryObject() throws {
        let bytes = try Export().stream(blinded: false).bytes
        // Read the keys back in the order they were written, with a scanner of our own.
        var keysInOrder: [[String]] = []
        var stack: [[String]] = []
        var inString = false, escaped = false, current = "", expectingKey = false
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if inString {
                if escaped { escaped = false; current.unicodeScalars.append(scalar); continue }
                if scalar == "\\" { escaped = true; continue }
                if scalar == "\"" { inString = false; continue }
                current.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "{": stack.append([]); expectingKey = true
            case "}": keysInOrder.append(stack.removeLast()); expectingKey = false
            case ",": expectingKey = !stack.isEmpty
            case "\"": inString = true; current = ""
            case ":": if expectingKey { stack[stack.count - 1].append(current) }; expectingKey = false
            case "[": expectingKey = false
            default: break
            }
        }
        #expect(keysInOrder.count > 50)
        for keys in keysInOrder {
            #expect(keys == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "\(keys)")
        }
    }

    @Test func theOutputIsJSONWithResolvableStableURLs() throws {
        let export = try Export()
        let bundle = try json(try export.stream(blinded: false).bytes)
        #expect(bundle["resourceType"] as? String == "Bundle")
        #expect(bundle["type"] as? String == "collection")
        let entries = try #require(bundle["entry"] as? [[String: Any]])
        let urls = entries.compactMap { $0["fullUrl"] as? String }
        #expect(urls.count == entries.count && Set(urls).count == urls.count)
        let uuid = try Regex("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        for entry in entries {
            let url = try #require(entry["fullUrl"] as? String)
            #expect(url.wholeMatch(of: uuid) != nil, "\(url)")
            #expect((entry["resource"] as? [String: Any])?["id"] as? String == String(url.dropFirst("urn:uuid:".count)))
        }
        // Every reference inside the bundle resolves to one of its entries.
        let refs = references(in: entries.map { $0["resource"] as Any })
        // Each participant's ResearchSubject (study, individual); each lab, dose and event its subject; each event its
        // study and suspect doses.
        #expect(refs.count == export.subjects.count * 2 + export.labs.count + export.doses.count + export.events.count * 2
            + export.events.map(\.suspectDoses.count).reduce(0, +))
        for ref in refs { #expect(Set(urls).contains(ref), "dangling \(ref)") }
        // Another deployment (another base) gives other ids for the same data.
        let elsewhere = try FHIRBundle.document(
            study: export.study, options: FHIRExportOptions(base: "https://other.example.org/fhir", blinded: false), subjects: export.subjects,
            doses: [], labs: [], events: [])
        let otherUrls = Set(((try json(elsewhere))["entry"] as? [[String: Any]] ?? []).compactMap { $0["fullUrl"] as? String })
        #expect(otherUrls.isDisjoint(with: urls))
    }

    @Test func stableUUIDsAreVersion5AsRFC9562Defines() {
        // RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS name space.
        let dns = UUID(uuidString: "6ba7b810-9dad-11d1-80b4-00c04fd430c8")!
        #expect(FHIRBundle.stableUUID("www.example.com", namespace: dns).uuidString.lowercased() == "2ed6657d-e927-568b-95e1-2665a8aea6a2")
        #expect(FHIRBundle.stableUUID("a") == FHIRBundle.stableUUID("a"))
        #expect(FHIRBundle.stableUUID("a") != FHIRBundle.stableUUID("b"))
    }

    @Test func theWriterRefusesDanglingAndLateRecords() throws {
        let export = try Export()
        var writer = FHIRBundleWriter(study: export.study, options: export.options(blinded: false)) { _ in }
        #expect(throws: FHIRExportError.unknownReference(record: "lab lab-1", reference: "UCMSC-ACLF-PLAGH5-001")) { try writer.add(export.labs[0]) }
        try writer.add(export.subjects[0])
        #expect(throws: FHIRExportError.duplicate("participant UCMSC-ACLF-PLAGH5-001")) { try writer.add(export.subjects[0]) }
        #expect(throws: FHIRExportError.unknownReference(record: "adverse event ae-1", reference: "dose-1")) { try writer.add(export.events[0]) }
        var unknown = export.labs[0]
        unknown.test = "NOPE"
        #expect(throws: FHIRExportError.unknownLab(record: "lab lab-1", test: "NOPE")) { try writer.add(unknown) }
        var wrongArm = export.subjects[1]
        wrongArm.assignedArm = "nope"
        #expect(throws: FHIRExportError.unknownArm(subject: "UCMSC-ACLF-PLAGH5-002", arm: "nope")) { try writer.add(wrongArm) }
        // A refused record leaves nothing behind: the same participant, corrected, is still accepted.
        try writer.add(export.subjects[1])
        var nan = export.labs[0]
        nan.value = .nan
        #expect(throws: FHIRExportError.notANumber(record: "lab lab-1")) { try writer.add(nan) }
        try writer.finish()
        #expect(throws: FHIRExportError.finished) { try writer.add(export.subjects[2]) }
        #expect(throws: FHIRExportError.finished) { try writer.finish() }
    }

    // MARK: resources

    @Test func observationsCarryTheCataloguesLOINCAndTheirRange() throws {
        let study = try second()
        let subject = FHIRSubject(subject: "S-1", status: .randomized)
        let labs = LabCatalogue.tests.enumerated().map { index, test in
            FHIRLab(id: "lab-\(index)", subject: "S-1", test: test.code, value: 10, collectedAt: Date(timeIntervalSince1970: 1_767_225_600), low: 5, high: 20)
        }
        let bundle = try json(
            try FHIRBundle.document(study: study, options: FHIRExportOptions(base: base, blinded: false), subjects: [subject], doses: [], labs: labs, events: []))
        let observations = resources(bundle, "Observation")
        #expect(observations.count == LabCatalogue.tests.count)
        for (test, observation) in zip(LabCatalogue.tests, observations) {
            let codes = codings(observation["code"])
            let loinc = codes.filter { $0["system"] as? String == "http://loinc.org" }
            #expect(loinc.compactMap { $0["code"] as? String } == (test.loinc.map { [$0] } ?? []), "\(test.code)")
            #expect(codes.contains { $0["code"] as? String == test.code && $0["system"] as? String == "\(base)/CodeSystem/lab" })
            #expect((observation["code"] as? [String: Any])?["text"] as? String == test.name)
            let value = try #require(observation["valueQuantity"] as? [String: Any])
            #expect(value["unit"] as? String == test.unit)
            #expect(value["code"] as? String == UCUM.code(for: test.unit))
            #expect(codings(observation["category"].flatMap { ($0 as? [Any])?.first }).first?["code"] as? String == "laboratory")
            #expect(observation["effectiveDateTime"] as? String == "2026-01-01T00:00:00Z")
        }
        // Times in UTC to the second, as Foundation's ISO 8601 formatter writes them, across leap days and centuries.
        let formatter = ISO8601DateFormatter()
        var instants = ["1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1900-03-01T00:00:00Z", "2000-02-29T12:34:56Z", "2100-02-28T23:59:59Z"]
        instants += (0..<40).map { formatter.string(from: Date(timeIntervalSince1970: Double($0) * 97_654_321.0 - 1_500_000_000)) }
        let timed = instants.enumerated().map { i, instant in
            FHIRLab(id: "t\(i)", subject: "S-1", test: "ALT", value: 1, collectedAt: formatter.date(from: instant)!)
        }
        let times = try json(
            try FHIRBundle.document(study: study, options: FHIRExportOptions(base: base, blinded: false), subjects: [subject], doses: [], labs: timed, events: []))
        #expect(resources(times, "Observation").compactMap { $0["effectiveDateTime"] as? String } == instants)
        // Interpretation against the range: above, below, inside, and none without a range.
        func interpretation(_ value: Double, low: Double?, high: Double?) throws -> String? {
            let lab = FHIRLab(id: "x", subject: "S-1", test: "SODIUM", value: value, collectedAt: Date(timeIntervalSince1970: 0), low: low, high: high)
            let doc = try json(
                try FHIRBundle.document(study: study, options: FHIRExportOptions(base: base, blinded: false), subjects: [subject], doses: [], labs: [lab], events: []))
            let observation = try #require(resources(doc, "Observation").first)
            let range = (observation["referenceRange"] as? [[String: Any]])?.first
            #expect(((range?["low"] as? [String: Any])?["value"] as? NSNumber)?.doubleValue == low)
            #expect(((range?["high"] as? [String: Any])?["value"] as? NSNumber)?.doubleValue == high)
            return codings((observation["interpretation"] as? [Any])?.first).first?["code"] as? String
        }
        #expect(try interpretation(150, low: 135, high: 145) == "H")
        #expect(try interpretation(130, low: 135, high: 145) == "L")
        #expect(try interpretation(145, low: 135, high: 145) == "N")
        #expect(try interpretation(150, low: 135, high: nil) == "N")
        #expect(try interpretation(150, low: nil, high: nil) == nil)
    }

    @Test(.enabled(if: present(loincNotes), "needs ../shared/reference/LOINC.md beside the checkout"))
    func loincDisplaysAreTheOnesLOINCmdRecords() throws {
        // The table rows of LOINC.md: | analyte | code | display as seen | source |.
        var recorded: [String: String] = [:]
        for line in try String(contentsOf: loincNotes, encoding: .utf8).split(separator: "\n") where line.hasPrefix("|") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if cells.count > 3, cells[2].contains("-"), cells[2].allSatisfy({ $0.isNumber || $0 == "-" }) { recorded[cells[2]] = cells[3] }
        }
        #expect(recorded.count >= 10)
        let study = try second()
        let withLOINC = LabCatalogue.tests.filter { $0.loinc != nil }
        let labs = withLOINC.map { FHIRLab(id: $0.code, subject: "S-1", test: $0.code, value: 1, collectedAt: Date(timeIntervalSince1970: 0)) }
        let bundle = try json(
            try FHIRBundle.document(
                study: study, options: FHIRExportOptions(base: base, blinded: false), subjects: [FHIRSubject(subject: "S-1", status: .randomized)],
                doses: [], labs: labs, events: []))
        for observation in resources(bundle, "Observation") {
            let loinc = try #require(codings(observation["code"]).first { $0["system"] as? String == "http://loinc.org" })
            let code = try #require(loinc["code"] as? String)
            #expect(loinc["display"] as? String == recorded[code], "\(code)")
        }
    }

    @Test func bothStudiesGiveTheirResearchStudy() throws {
        let options = FHIRExportOptions(base: base, blinded: false)
        for study in [try StudyFile.builtIn(), try second()] {
            let resource = try json(FHIRBundle.researchStudy(study, options: options))
            #expect(resource["resourceType"] as? String == "ResearchStudy")
            #expect(resource["title"] as? String == study.identity.title)
            // Both definitions have the sponsor's study recruiting: "Study is opened for accrual".
            #expect(study.lifecycle.operatingStatus == .recruiting)
            #expect(resource["status"] as? String == "active")
            #expect((resource["arm"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == study.arms.map(\.name))
            #expect((resource["sponsor"] as? [String: Any])?["display"] as? String == study.identity.sponsor)
            #expect((resource["period"] as? [String: Any])?["start"] as? String == study.lifecycle.dates.start)
            #expect((resource["period"] as? [String: Any])?["end"] as? String == study.lifecycle.dates.completion)
            let identifiers = try #require(resource["identifier"] as? [[String: Any]])
            #expect(identifiers.contains { $0["value"] as? String == study.code && $0["system"] as? String == "\(base)/study" })
            #expect(identifiers.count == 1 + study.identity.registryIds.count)
            #expect(((resource["condition"] as? [[String: Any]]) ?? []).compactMap { $0["text"] as? String } == study.identity.conditions)
        }
        let msc = try json(FHIRBundle.researchStudy(try StudyFile.builtIn(), options: options))
        #expect(codings(msc["phase"]).first?["code"] as? String == "early-phase-1")
        let uc = try json(FHIRBundle.researchStudy(try second(), options: options))
        #expect(codings(uc["phase"]).first?["code"] as? String == "phase-1-phase-2")
        #expect(codings(uc["primaryPurposeType"]).first?["code"] as? String == "treatment")
        let ids = try #require(uc["identifier"] as? [[String: Any]])
        let nct = try #require(ids.first { $0["value"] as? String == "NCT05985863" })
        #expect(nct["system"] as? String == "https://clinicaltrials.gov")
        // The funder's number has no registry the definition names: written without a system.
        let grant = try #require(ids.first { $0["value"] as? String == "2022YFC2304402" })
        #expect(grant["system"] == nil)

        // The operating status drives the resource's: a withdrawn study says so, with its reason.
        var withdrawn = try second()
        withdrawn.lifecycle.operating?.append(OperatingChange(status: .withdrawn, date: "2026-02-01", reason: "Sponsor decision"))
        let stopped = try json(FHIRBundle.researchStudy(withdrawn, options: options))
        #expect(stopped["status"] as? String == "withdrawn")
        #expect((stopped["reasonStopped"] as? [String: Any])?["text"] as? String == "Sponsor decision")
        #expect(OperatingStatus.allCases.map(FHIRMapping.studyStatus).count == Set(OperatingStatus.allCases.map(FHIRMapping.studyStatus)).count)
    }

    @Test func participantsArePseudonymous() throws {
        let export = try Export()
        let bundle = try json(try export.document(blinded: false))
        let patients = resources(bundle, "Patient")
        #expect(patients.count == export.subjects.count)
        for (patient, subject) in zip(patients, export.subjects) {
            #expect(Set(patient.keys).isSubset(of: ["resourceType", "id", "meta", "identifier", "gender", "birthDate"]), "\(patient.keys)")
            #expect(patient["birthDate"] as? String == subject.birthYear.map { String($0) })
            #expect((patient["identifier"] as? [[String: Any]])?.first?["value"] as? String == subject.subject)
            #expect(patient["gender"] as? String == subject.sex?.rawValue)
        }
        #expect(FHIRSubject.year(ofBirthDate: "1976-03-14") == 1976)
        let statuses = resources(bundle, "ResearchSubject").compactMap { $0["status"] as? String }
        #expect(statuses == ["on-study", "on-study", "ineligible"])
        #expect(FHIRMapping.subjectStatus(.withdrawn, registered: false) == "withdrawn")
        #expect(FHIRMapping.subjectStatus(.withdrawn, registered: true) == "off-study")
    }

    @Test func adverseEventsCarryMedDRAGradeAndCausality() throws {
        let export = try Export()
        let bundle = try json(try export.document(blinded: false))
        let events = resources(bundle, "AdverseEvent")
        #expect(events.count == 2)
        let reaction = events[0], fever = events[1]
        #expect(reaction["actuality"] as? String == "actual")
        let meddra = try #require(codings(reaction["event"]).first)
        #expect(meddra["system"] as? String == "https://www.meddra.org")
        #expect(meddra["code"] as? String == export.events[0].meddra)
        #expect((reaction["event"] as? [String: Any])?["text"] as? String == export.events[0].term)
        #expect(codings(reaction["severity"]).first?["code"] as? String == "moderate")
        #expect(codings(fever["severity"]).first?["code"] as? String == "severe")
        #expect(codings(reaction["seriousness"]).first?["code"] as? String == "Non-serious")
        #expect(codings(fever["seriousness"]).first?["code"] as? String == "SeriousResultsInHospitalization")
        #expect(codings(reaction["outcome"]).first?["code"] as? String == "resolved")
        #expect(codings(fever["outcome"]).first?["code"] as? String == "recovering")
        // The grade itself, exact where R4's severity stops at "severe".
        let grade = try #require((fever["extension"] as? [[String: Any]])?.first)
        #expect(grade["url"] as? String == "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade")
        #expect((grade["valueCodeableConcept"] as? [String: Any])?["text"] as? String == "CTCAE v5.0 grade 3")
        // Causality on the dose named as suspect, which is an entry of the bundle.
        let suspect = try #require((reaction["suspectEntity"] as? [[String: Any]])?.first)
        let doseURL = try #require((suspect["instance"] as? [String: Any])?["reference"] as? String)
        let doseEntry = (bundle["entry"] as? [[String: Any]])?.first { $0["fullUrl"] as? String == doseURL }
        #expect((doseEntry?["resource"] as? [String: Any])?["resourceType"] as? String == "MedicationAdministration")
        let assessment = ((suspect["causality"] as? [[String: Any]])?.first?["assessment"]) as? [String: Any]
        #expect(assessment?["text"] as? String == "Possible")
        // Without a suspect dose, the intervention as a whole, by description.
        let general = try #require((fever["suspectEntity"] as? [[String: Any]])?.first)
        #expect((general["instance"] as? [String: Any])?["display"] as? String == "Study intervention")
        #expect((reaction["study"] as? [[String: Any]])?.first?["reference"] as? String == resources(bundle, "ResearchStudy").first.flatMap { study in
            (bundle["entry"] as? [[String: Any]])?.first { ($0["resource"] as? [String: Any])?["id"] as? String == study["id"] as? String }?["fullUrl"] as? String
        })
        #expect(FHIRMapping.outcome("Not recovered") == "ongoing")
        #expect(FHIRMapping.outcome("RECOVERED/RESOLVED WITH SEQUELAE") == "resolvedWithSequelae")
        #expect(FHIRMapping.outcome("something else") == "unknown")
    }

    @Test func dosesNotGivenSayWhy() throws {
        let bundle = try json(try Export().document(blinded: false))
        let skipped = try #require(resources(bundle, "MedicationAdministration").first { $0["status"] as? String == "not-done" })
        #expect(((skipped["statusReason"] as? [[String: Any]])?.first?["text"]) as? String == "The pre-dose check did not pass")
        #expect(skipped["dosage"] == nil)
        #expect((skipped["effectivePeriod"] as? [String: Any])?["start"] as? String == "2026-01-15T09:00:00Z")
    }

    // MARK: the official examples

    /// Paths whose JSON kind differs between ours and the example, where both have the path; and how many were compared.
    private func shapeMismatches(_ ours: Any, _ theirs: Any, path: String = "") -> (mismatches: [String], compared: Int) {
        func kind(_ value: Any) -> String {
            if value is [String: Any] { return "object" }
            if value is [Any] { return "array" }
            if value is String { return "string" }
            return "scalar"
        }
        guard kind(ours) == kind(theirs) else { return (["\(path): \(kind(ours)) vs \(kind(theirs))"], 1) }
        if let a = ours as? [String: Any], let b = theirs as? [String: Any] {
            return Set(a.keys).intersection(b.keys).sorted().reduce(([], 1)) { sum, key in
                let r = shapeMismatches(a[key]!, b[key]!, path: path + "." + key)
                return (sum.0 + r.0, sum.1 + r.1)
            }
        }
        if let a = ours as? [Any], let b = theirs as? [Any], let x = a.first, let y = b.first {
            let r = shapeMismatches(x, y, path: path + "[]")
            return (r.0, r.1 + 1)
        }
        return ([], 1)
    }

    @Test(.enabled(if: present(fhirExamples), "needs ../shared/reference/fhir-r4 beside the checkout"))
    func resourcesHaveTheShapeOfTheOfficialExamples() throws {
        let bundle = try json(try Export().document(blinded: false))
        func example(_ name: String) throws -> [String: Any] { try json(try Data(contentsOf: fhirExamples.appendingPathComponent(name))) }
        let cases: [(type: String, example: [String: Any], least: Int)] = [
            ("AdverseEvent", try example("AdverseEvent-example.json"), 15),
            ("ResearchSubject", try example("ResearchSubject-example.json"), 8),
            ("ResearchStudy", try example("ResearchStudy-example.json"), 2),
            ("Observation", try example("Observation-f001.json"), 15),
        ] + resources(try example("Bundle-ghp.json"), "Observation").map { ("Observation", $0, 10) }
        for (type, theirs, least) in cases {
            for ours in resources(bundle, type) {
                let (mismatches, compared) = shapeMismatches(ours, theirs)
                #expect(mismatches.isEmpty, "\(type) differs from \(theirs["id"] ?? "the example"): \(mismatches)")
                if type == "Observation", codings(ours["code"]).count < 2 { continue }  // a lab without LOINC shares less
                #expect(compared >= least, "\(type): only \(compared) paths in common with \(theirs["id"] ?? "the example")")
            }
        }
        // Where the example codes the same thing, it uses the same code system.
        let ae = try example("AdverseEvent-example.json"), ours = try #require(resources(bundle, "AdverseEvent").first)
        #expect(codings(ours["seriousness"]).first?["system"] as? String == codings(ae["seriousness"]).first?["system"] as? String)
        #expect(codings(ours["seriousness"]).first?["code"] as? String == codings(ae["seriousness"]).first?["code"] as? String)
        #expect(codings(ours["severity"]).first?["system"] as? String == codings(ae["severity"]).first?["system"] as? String)
        let f001 = try example("Observation-f001.json")
        let high = try #require(resources(bundle, "Observation").first { codings(($0["interpretation"] as? [Any])?.first).first?["code"] as? String == "H" })
        #expect(codings((high["interpretation"] as? [Any])?.first).first as NSDictionary? == codings((f001["interpretation"] as? [Any])?.first).first as NSDictionary?)
        #expect(codings(high["code"]).first?["system"] as? String == codings(f001["code"]).first?["system"] as? String)
        // A collection bundle, as Bundle-101.json: entries of fullUrl and resource.
        let official = try example("Bundle-101.json")
        #expect(bundle["type"] as? String == official["type"] as? String)
        let (mismatches, _) = shapeMismatches(
            (bundle["entry"] as? [[String: Any]])?.first.map { ["fullUrl": $0["fullUrl"]!] } as Any,
            (official["entry"] as? [[String: Any]])?.first.map { ["fullUrl": $0["fullUrl"]!] } as Any)
        #expect(mismatches.isEmpty)
    }
}
