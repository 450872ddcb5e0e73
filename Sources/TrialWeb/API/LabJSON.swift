import Foundation
import TrialDomain
import TrialStore
import Vapor

/// A saved lab result as the API answers it, written directly: the members `JSONEncoder` writes (dates ISO 8601 to
/// the second, absent optionals left out), at a fraction of its cost on the busiest write there is.
enum LabJSON {
    /// Nil for a value JSON cannot hold (never for a saved result, whose numbers are checked on entry).
    static func encode(_ lab: LabResult) -> [UInt8]? {
        let numbers = [lab.value, lab.enteredValue, lab.uln, lab.lln, lab.baseline].compactMap { $0 }
        guard numbers.allSatisfy(\.isFinite) else { return nil }
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(512)
        func member(_ name: String, _ write: (inout [UInt8]) -> Void) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            AuditEntry.appendJSONString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            write(&out)
        }
        func text(_ name: String, _ value: String?) {
            if let value { member(name) { AuditEntry.appendJSONString(value, to: &$0) } }
        }
        func raw(_ name: String, _ value: String?) {
            if let value { member(name) { $0.append(contentsOf: value.utf8) } }
        }
        text("id", lab.id.text)
        text("visit", lab.visit)
        text("test", lab.test)
        // JSONEncoder's .iso8601: UTC, whole seconds.
        text("collectedAt", AuditEntry.timestamp(lab.collectedAt).prefix(19) + "Z")
        raw("value", lab.value.description)
        text("unit", lab.unit)
        raw("enteredValue", lab.enteredValue.description)
        text("enteredUnit", lab.enteredUnit)
        raw("uln", lab.uln?.description)
        raw("lln", lab.lln?.description)
        raw("baseline", lab.baseline?.description)
        raw("gradeV4", lab.gradeV4.map(String.init))
        raw("gradeV5", lab.gradeV5.map(String.init))
        text("basisV4", lab.basisV4)
        text("basisV5", lab.basisV5)
        raw("baselineGrade", lab.baselineGrade.map(String.init))
        raw("treatmentEmergent", lab.treatmentEmergent ? "true" : "false")
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The 201 answer to a save, as `encodeResponse(status: .created, for:)` would give it.
    static func created(_ lab: LabResult, for request: Request) async throws -> Response {
        guard let bytes = encode(lab) else { return try await lab.encodeResponse(status: .created, for: request) }
        var headers = HTTPHeaders()
        headers.add(name: .contentType, value: "application/json; charset=utf-8")
        return Response(status: .created, headers: headers, body: .init(buffer: ByteBuffer(bytes: bytes)))
    }
}
