import Foundation
import Testing
@testable import TrialDomain
@testable import TrialStandards

@Suite struct BuiltInStudyTests {
    let study: StudyDefinition

    init() throws { study = try StudyFile.builtIn() }

    @Test func itIsValid() {
        #expect(StudyValidator.problems(in: study) == [])
    }

    /// The decisions PROTOCOL.md lists are settings of the definition, checked here against the protocol's own words.
    @Test func itHoldsTheProtocolsDecisions() throws {
        #expect(study.arms.map(\.code) == ["msc_ev", "control"])
        #expect(study.arms.map(\.ratio) == [1, 1])
        let dose = try #require(study.interventions.first?.dose)
        #expect(dose.amount == 1e10)
        #expect(dose.unit == "particles")
        #expect(dose.volume == 100)
        #expect(study.interventions.first?.route == "intravenous")
        #expect(study.randomization.blockSizes == [2, 4])
        #expect(study.randomization.stratifyBySite)
        #expect(study.randomization.factors.map(\.cutoffs) == [[30]])
        #expect(study.randomization.window == AllocationWindow(anchor: "transplant", earliest: Offset(1, .days), latest: Offset(7, .days)))
        // PROTOCOL.md, "Reference ranges": the bilirubin ULN is the site range's 17.1 µmol/L, read from the range itself.
        #expect(study.parameter("bilirubin_uln")?.range == ParameterRange(test: "BILI", limit: .high))
        #expect(study.parameterValue("bilirubin_uln", site: "SYSU3") == 17.1)
        #expect(study.safety.ctcaeVersion == "4.0")
        #expect(study.safety.saeReportingHours == 24)
        #expect(study.lifecycle.status == .withdrawn)
        #expect(study.identity.masking == "NONE")
        let windows = Dictionary(uniqueKeysWithValues: study.visits.compactMap { v in v.window.map { (v.code, "\(v.target!) ±\($0.after)") } })
        #expect(windows["safety_24h"] == "24h ±2h")
        #expect(windows["day_7"] == "7d ±1d")
        #expect(windows["day_14"] == "14d ±2d")
        #expect(windows["day_28"] == "28d ±3d")
        #expect(windows["month_3"] == "90d ±7d")
        #expect(windows["month_6"] == "180d ±14d")
        #expect(study.endpoints.filter { $0.kind == .primary }.map(\.timeFrame) == ["24 hours after injection"])
        #expect(study.endpoints.count == 7)
    }

    @Test func yamlAndJSONRoundTrip() throws {
        #expect(try StudyFile.read(try StudyFile.yaml(study)) == study)
        #expect(try StudyFile.read(try StudyFile.json(study)) == study)
    }
}

@Suite struct StudyFileErrorTests {
    func problems(_ text: String) -> [StudyProblem] {
        do {
            _ = try StudyFile.read(text)
            return []
        } catch let error as StudyFile.ReadError {
            return error.problems
        } catch {
            return [StudyProblem("?", "\(error)")]
        }
    }

    func builtInText() throws -> String { try StudyFile.yaml(try StudyFile.builtIn()) }

    @Test func aMisspeltSettingIsNamed() throws {
        let text = try builtInText().replacingOccurrences(of: "stratifyBySite: true", with: "stratifyBySite: true\n  stratifyBySit: false")
        #expect(problems(text) == [StudyProblem("randomization.stratifyBySit", "unknown setting 'stratifyBySit'")])
    }

    @Test func aWrongTypeIsNamedWithItsPath() throws {
        let text = try builtInText().replacingOccurrences(of: "saeReportingHours: 24", with: "saeReportingHours: soon")
        #expect(problems(text) == [StudyProblem("safety.saeReportingHours", "must be a whole number")])
    }

    @Test func aMissingSectionIsNamed() {
        #expect(problems("schemaVersion: 1\ncode: X\n").first?.rule == "is required")
    }

    @Test func brokenYAMLIsRefused() {
        #expect(problems("code: [unclosed").first?.path == "(file)")
    }
}
