import Foundation
import Testing
import TrialDomain
@testable import TrialStore
@testable import TrialWeb
import Vapor

/// The hand-written answer to a lab save holds exactly what Vapor's JSON encoder (ISO 8601 dates) writes for the
/// same result: every member, absent optionals left out. A member added to `LabResult` and not written fails here.
@Suite struct LabJSONTests {
    static let full = LabResult(
        id: UUID(uuidString: "0196A0C4-1F2E-7A3B-8C4D-5E6F70819203")!, visit: "day_7", test: "BILI",
        collectedAt: Date(timeIntervalSince1970: 1_795_996_800), value: 210, unit: "umol/L", enteredValue: 12.28, enteredUnit: "mg/dL",
        uln: 17.1, lln: nil, baseline: 200.5, gradeV4: 4, gradeV5: 1, basisV4: "> 10.0 × ULN", basisV5: "\"1.0–1.5 × baseline\"\n",
        baselineGrade: 4, treatmentEmergent: false)

    static let bare = LabResult(
        id: UUID(uuidString: "0196A0C4-1F2E-7A3B-8C4D-5E6F70819204")!, visit: "screening", test: "SODIUM",
        collectedAt: Date(timeIntervalSince1970: -86_399.75), value: 136, unit: "mmol/L", enteredValue: 136, enteredUnit: "mEq/L",
        uln: nil, lln: nil, baseline: nil, gradeV4: nil, gradeV5: nil, basisV4: nil, basisV5: nil, baselineGrade: nil, treatmentEmergent: true)

    @Test(arguments: [full, bare])
    func theSameMembersAsTheEncoder(lab: LabResult) throws {
        let expected = try JSONSerialization.jsonObject(with: JSONEncoder.custom(dates: .iso8601).encode(lab)) as! NSDictionary
        let written = try JSONSerialization.jsonObject(with: Data(try #require(LabJSON.encode(lab)))) as! NSDictionary
        #expect(written == expected)
        let decoded = try JSONDecoder.custom(dates: .iso8601).decode(LabResult.self, from: Data(try #require(LabJSON.encode(lab))))
        #expect(decoded.id == lab.id && decoded.basisV5 == lab.basisV5 && decoded.value == lab.value)
    }

    @Test func aValueJSONCannotHoldFallsBackToTheEncoder() {
        var lab = Self.full
        lab.baseline = .nan
        #expect(LabJSON.encode(lab) == nil)
    }
}
