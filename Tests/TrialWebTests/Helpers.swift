import Foundation
import NIOCore
import TestSupport
import Testing
import Vapor
import VaporTesting

func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func bearer(_ token: String, json: Bool = true) -> HTTPHeaders {
    var headers = HTTPHeaders([("Authorization", "Bearer \(token)")])
    if json { headers.contentType = .json }
    return headers
}

/// The error message of a JSON error answer.
func errorMessage(_ response: TestingHTTPResponse) -> String {
    (try? response.content.get(String.self, at: "error")) ?? response.body.string
}

extension TestApp {
    func send(_ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) async throws -> TestingHTTPResponse {
        try await app.testing().sendRequest(method, path, headers: headers, body: body)
    }

    func auditCount() async throws -> Int {
        try await store.database.query(TrialStoreAuditEvents.self).count()
    }
}

import FluentKit
import TrialStore
typealias TrialStoreAuditEvents = AuditEventModel
