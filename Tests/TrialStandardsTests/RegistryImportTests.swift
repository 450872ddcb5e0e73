import Foundation
import TestSupport
import Testing
@testable import TrialDomain
@testable import TrialStandards

private func fixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    return try String(contentsOf: url, encoding: .utf8)
}

/// The draft must be a definition file Casebook can read back, whatever it still lacks.
private func readBack(_ draft: RegistryDraft) throws -> StudyDefinition {
    try StudyFile.decode(try draft.yaml())
}

@Suite struct PlainTextImportTests {
    @Test func theFixtureRecordIsReadWhole() throws {
        let draft = try RegistryImport.draft(from: try fixture("plain-record.txt"), source: "plain-record.txt")
        let study = try readBack(draft)
        #expect(study.identity.title == "Low-Dose Widget Infusion in Post-Operative Ileus: a Randomized Pilot Study")
        #expect(study.identity.shortTitle == "WIDGET-PI")
        #expect(study.identity.phase == "PHASE2")
        #expect(study.identity.masking == "DOUBLE")
        #expect(study.lifecycle.status == .recruiting)
        #expect(study.lifecycle.dates == StudyDates(start: "2026-01-15", primaryCompletion: "2026-12-31", completion: "2027-06-30", recordUpdated: "2026-02-01"))
        #expect(study.arms.map(\.name) == ["Widget group", "Saline group"])
        // "2 E9 … per 50ml": 2 × 10^9 particles in 50 mL.
        #expect(study.interventions.first?.dose == Dose(amount: 2e9, unit: "particles", volume: 50, volumeUnit: "mL"))
        #expect(study.endpoints.map(\.kind) == [.primary, .secondary])
        #expect(study.endpoints.map(\.timeFrame) == ["7 days after surgery", "30 days"])
        #expect(study.eligibility.inclusion.map(\.text) == ["aged 18-80 years", "elective colectomy"])
        #expect(study.eligibility.exclusion.map(\.text) == ["pregnancy", "prior widget exposure"])
        #expect(draft.todos.contains { $0.hasPrefix("anchors, visits and forms") })
    }

    @Test func theSeedRecordFillsWhatItStates() throws {
        let url = Reference.root.deletingLastPathComponent().appendingPathComponent("protocol/registry-record.txt")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            print("SKIPPED: ../shared/protocol/registry-record.txt is not beside this checkout")
            return
        }
        let draft = try RegistryImport.draft(from: text, source: "registry-record.txt")
        let study = try readBack(draft)
        #expect(study.identity.shortTitle == "MSC-EV of ThirdSunYatSen")
        #expect(study.identity.phase == "EARLY_PHASE1")
        #expect(study.identity.allocation == "RANDOMIZED")
        #expect(study.identity.masking == "NONE")
        #expect(study.lifecycle.status == .withdrawn)
        #expect(study.lifecycle.enrollment.actual == 0)
        #expect(study.lifecycle.dates.start == "2023-09-30")
        #expect(study.lifecycle.dates.completion == "2025-04-30")
        // PROTOCOL.md: 1×10^10 MSC-EV particles in 100 ml, single intravenous dose.
        #expect(study.interventions.first?.dose == Dose(amount: 1e10, unit: "particles", volume: 100, volumeUnit: "mL"))
        #expect(study.interventions.first?.frequency == "single dose")
        #expect(study.endpoints.count == 7)
        #expect(study.endpoints.first?.timeFrame == "24 hours after injection")
        #expect(study.endpoints.filter { $0.kind == .secondary }.count == 6)
        #expect(study.eligibility.inclusion.count == 4)
        #expect(study.eligibility.exclusion.map(\.text) == [
            "Past history of malignant disease", "Active uncontrolled infection", "Combined transplantation", "EBV-negative",
            "HIV or HCV positive", "Retransplantation",
        ])
        #expect(draft.todos.contains { $0.contains("names 1 arm but the design is RANDOMIZED") })
        #expect(draft.todos.contains { $0.contains("protocol block says PHASE1") })
        #expect(draft.todos.contains { $0.contains("withdrawn without a reason") })
    }

    @Test(arguments: [
        ("Trial\n", "line 1"),
        ("Clinical trial\n\nT\n\nStatus\nRecruiting\nPhase\nPhase II\nTrial start\n2026-13-01\nPrimary endpoint\nm\nt\nEligibility criteria\nx\n", "line 10"),
        ("Clinical trial\n\nT\n\nStatus\nRecruiting\nPhase\nPhase II\nPrimary endpoint\nm\nt\n", "line 11"),
        ("Clinical trial\n\nT\n\nStatus\nParked\nPhase\nPhase II\nPrimary endpoint\nm\nt\nEligibility criteria\nx\n", "line 6"),
    ])
    func malformedRecordsNameTheLine(text: String, location: String) {
        #expect { try RegistryImport.draft(from: text, source: "x") } throws: { error in
            (error as? RegistryImportError)?.location == location
        }
    }
}

@Suite struct ClinicalTrialsGovImportTests {
    @Test func theFixtureStudyIsRead() throws {
        let draft = try RegistryImport.draft(from: try fixture("ctgov-study.json"), source: "ctgov-study.json")
        let study = try readBack(draft)
        #expect(study.code == "NCT09999999")
        #expect(study.identity.registryIds == ["NCT09999999"])
        #expect(study.identity.phase == "PHASE2")
        #expect(study.identity.sponsor == "Fictional Hospital")
        #expect(study.lifecycle.history == [StatusChange(status: .terminated, date: "2026-01-10", reason: "Sponsor decision")])
        #expect(study.lifecycle.dates.start == "2025-03-01")
        #expect(study.lifecycle.enrollment.actual == 12)
        #expect(study.arms.map(\.interventions) == [["widget"], ["placebo"]])
        #expect(study.arms.map(\.type) == ["EXPERIMENTAL", "PLACEBO_COMPARATOR"])
        #expect(study.endpoints.map(\.measure) == ["Time to first bowel movement", "Length of stay"])
        #expect(study.eligibility.exclusion.map(\.text) == ["Pregnancy", "Known widget allergy"])
        #expect(draft.todos.contains("identity.phase: the record lists PHASE2, PHASE3; the first was taken"))
        #expect(draft.todos.contains("eligibility: the registry's minimum age is 18 Years"))
    }

    @Test func aRealRegistryRecordIsRead() throws {
        let url = Reference.root.appendingPathComponent("ctgov/NCT03418623.json")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            print("SKIPPED: ../shared/reference/ctgov/NCT03418623.json is not beside this checkout")
            return
        }
        let study = try readBack(try RegistryImport.draft(from: text, source: "NCT03418623.json"))
        #expect(study.code == "NCT03418623")
        #expect(study.identity.interventionModel == "CROSSOVER")
        #expect(study.identity.masking == "QUADRUPLE")
        #expect(study.lifecycle.status == .completed)
        #expect(study.lifecycle.enrollment.actual == 24)
        #expect(study.arms.map(\.name) == ["GET73", "Placebo"])
        #expect(study.arms.map(\.interventions) == [["get73"], ["placebo"]])
    }

    @Test(arguments: [
        (#"{"nothing": 1}"#, "field protocolSection"),
        (#"{"protocolSection": {"identificationModule": {"nctId": "N", "briefTitle": "T"}, "statusModule": {"overallStatus": "RECRUITING"}, "designModule": {"phases": "PHASE2"}}}"#, "field protocolSection.designModule.phases"),
        (#"{"protocolSection": {"identificationModule": {"nctId": 7, "briefTitle": "T"}}}"#, "field protocolSection.identificationModule.nctId"),
        (#"{"protocolSection": {"identificationModule": {"nctId": "N", "briefTitle": "T"}, "statusModule": {"overallStatus": "RECRUITING", "startDateStruct": {"date": "March"}}}}"#, "field protocolSection.statusModule.startDateStruct.date"),
        (#"{"protocolSection": "#, "file"),
    ])
    func malformedJSONNamesTheField(text: String, location: String) {
        #expect { try RegistryImport.draft(from: text, source: "x") } throws: { error in
            (error as? RegistryImportError)?.location == location
        }
    }
}
