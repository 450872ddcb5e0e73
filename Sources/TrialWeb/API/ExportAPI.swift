import Foundation
import NIOCore
import TrialDomain
import TrialStandards
import TrialStore
import Vapor

/// The standard exports under /api/v1/exports, for statisticians and data managers: written to a temporary file as the
/// store is read, then streamed from it, so no export is held in memory.
enum ExportAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("exports", "sdtm", use: sdtm)
        api.get("exports", "odm", use: odm)
        api.get("exports", "fhir", use: fhir)
    }

    /// The form the requester gets: `?blinded=true|false`; a blinded reader always the blinded one.
    static func blinded(_ req: Request, user: CurrentUser, study: StudyDefinition) throws -> Bool {
        var requested: Bool?
        if let text = req.query[String.self, at: "blinded"] {
            guard text == "true" || text == "false" else { throw StoreError.invalid(field: "blinded", rule: "must be true or false") }
            requested = text == "true"
        }
        return try ExportRules.blinded(role: user.account.role, study: study, requested: requested)
    }

    static func sdtm(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let blinded = try blinded(req, user: user, study: study)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("casebook-sdtm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        _ = try await Exports.sdtm(store: req.store, study: study, scope: user.scope, blinded: blinded, directory: work)
        let names = try FileManager.default.contentsOfDirectory(atPath: work.path).filter { !$0.hasPrefix(".") }.sorted()
        let zip = FileManager.default.temporaryDirectory.appendingPathComponent("casebook-sdtm-\(UUID().uuidString).zip")
        try await Exports.atomically(to: zip) { handle in
            try ZipArchive.write(files: names.map { ($0, work.appendingPathComponent($0)) }, to: handle)
        }
        return try await stream(req, file: zip, type: "application/zip", name: "\(study.code)-sdtm\(blinded ? "-blinded" : "").zip")
    }

    static func odm(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let blinded = try blinded(req, user: user, study: study)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("casebook-odm-\(UUID().uuidString).xml")
        try await Exports.atomically(to: file) { handle in
            _ = try await Exports.odm(store: req.store, study: study, scope: user.scope, blinded: blinded) { try handle.write(contentsOf: Data($0)) }
        }
        return try await stream(req, file: file, type: "application/xml", name: "\(study.code)-odm\(blinded ? "-blinded" : "").xml")
    }

    static func fhir(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let blinded = try blinded(req, user: user, study: study)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("casebook-fhir-\(UUID().uuidString).json")
        let base = "\(req.config.secureCookies ? "https" : "http")://\(req.headers.first(name: .host) ?? "casebook.invalid")/fhir"
        try await Exports.atomically(to: file) { handle in
            _ = try await Exports.fhir(store: req.store, study: study, scope: user.scope, blinded: blinded, base: base) { try handle.write(contentsOf: $0) }
        }
        return try await stream(req, file: file, type: "application/fhir+json", name: "\(study.code)-fhir\(blinded ? "-blinded" : "").json")
    }

    /// Streams the file and removes it once sent; audited as an export of the scope's data.
    static func stream(_ req: Request, file: URL, type: String, name: String) async throws -> Response {
        let user = try req.user
        _ = try await req.store.write { tx in
            try await AuditChain.append(
                on: tx, actor: user.account.username, action: .create, entity: "export", entityID: name, siteID: nil, reason: nil,
                changes: [.init(field: "file", old: nil, new: name)], now: req.now)
        }
        let response = try await req.fileio.asyncStreamFile(at: file.path, mediaType: HTTPMediaType(type: String(type.split(separator: "/")[0]), subType: String(type.split(separator: "/")[1]))) { _ in
            try? FileManager.default.removeItem(at: file)
        }
        response.headers.replaceOrAdd(name: .contentDisposition, value: "attachment; filename=\"\(name)\"")
        response.headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return response
    }
}
