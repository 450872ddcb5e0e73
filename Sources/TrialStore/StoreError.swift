import FluentPostgresDriver
import FluentSQLiteDriver
import Foundation

/// Store failures the web layer turns into 4xx answers; each names the field and rule.
public enum StoreError: Error, Equatable, Sendable {
    case notFound(entity: String, id: String)
    case duplicate(field: String, value: String)
    case invalid(field: String, rule: String)
    case reasonRequired(field: String)
    /// The request is sound but the state of the trial forbids it now (a study not recruiting, say).
    case conflict(field: String, rule: String)
    /// The user's role or identity may not do this (403).
    case forbidden(rule: String)
}

extension StoreError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notFound(let entity, let id): "\(entity) \(id) was not found"
        case .duplicate(let field, let value): "\(field): '\(value)' is already in use"
        case .invalid(let field, let rule): "\(field): \(rule)"
        case .reasonRequired(let field): "\(field): a reason is required for any change after the first save"
        case .conflict(let field, let rule): "\(field): \(rule)"
        case .forbidden(let rule): rule
        }
    }
}

extension StoreError {
    /// Whether the database refused a row because a unique index already holds its key.
    static func isUniqueViolation(_ error: any Error) -> Bool {
        if let error = error as? SQLiteError {
            return error.reason == .constraintUniqueFailed || error.reason == .constraintPrimaryKeyFailed
                || (error.reason == .constraint && error.message.contains("UNIQUE constraint failed"))
        }
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] == "23505" }
        return false
    }
}
