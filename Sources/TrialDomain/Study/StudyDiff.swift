import Foundation

/// One difference between two versions of a study definition.
public struct StudyChange: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable { case added, removed, changed }
    public var kind: Kind
    public var path: String
    public var old: String?
    public var new: String?

    public var description: String {
        switch kind {
        case .added: "added \(path): \(new ?? "")"
        case .removed: "removed \(path): \(old ?? "")"
        case .changed: "changed \(path): \(old ?? "") → \(new ?? "")"
        }
    }
}

/// Compares two definitions field by field; lists of coded items are matched by code, not position.
public enum StudyDiff {
    public static func changes(from old: StudyDefinition, to new: StudyDefinition) -> [StudyChange] {
        var changes: [StudyChange] = []
        compare(tree(old), tree(new), path: "", into: &changes)
        return changes
    }

    static func tree(_ study: StudyDefinition) -> JSONValue {
        guard let data = try? JSONEncoder().encode(study), let value = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            return .null
        }
        return value
    }

    static func compare(_ a: JSONValue, _ b: JSONValue, path: String, into changes: inout [StudyChange]) {
        switch (a, b) {
        case (.object(let a), .object(let b)):
            for key in Set(a.keys).union(b.keys).sorted() {
                let sub = path.isEmpty ? key : "\(path).\(key)"
                switch (a[key] ?? .null, b[key] ?? .null) {
                case (.null, .null): break
                case (.null, let new): changes.append(.init(kind: .added, path: sub, old: nil, new: new.text))
                case (let old, .null): changes.append(.init(kind: .removed, path: sub, old: old.text, new: nil))
                case (let old, let new): compare(old, new, path: sub, into: &changes)
                }
            }
        case (.array(let a), .array(let b)) where isCoded(a) && isCoded(b):
            let oldItems = coded(a), newItems = coded(b)
            var found: [StudyChange] = []
            for code in oldItems.keys.sorted() where newItems[code] == nil {
                found.append(.init(kind: .removed, path: "\(path)[\(code)]", old: oldItems[code]!.text, new: nil))
            }
            for code in newItems.keys.sorted() {
                if let old = oldItems[code] {
                    compare(old, newItems[code]!, path: "\(path)[\(code)]", into: &found)
                } else {
                    found.append(.init(kind: .added, path: "\(path)[\(code)]", old: nil, new: newItems[code]!.text))
                }
            }
            changes += found.sorted { $0.path < $1.path }
        default:
            if a != b { changes.append(.init(kind: .changed, path: path, old: a.text, new: b.text)) }
        }
    }

    static func isCoded(_ items: [JSONValue]) -> Bool {
        !items.isEmpty && items.allSatisfy { $0.code != nil }
    }

    static func coded(_ items: [JSONValue]) -> [String: JSONValue] {
        Dictionary(items.compactMap { item in item.code.map { ($0, item) } }, uniquingKeysWith: { first, _ in first })
    }
}

/// A JSON tree, for comparing definitions without caring about Swift types.
enum JSONValue: Decodable, Equatable {
    case object([String: JSONValue]), array([JSONValue]), string(String), number(Double), bool(Bool), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let n = try? container.decode(Double.self) { self = .number(n) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    var code: String? {
        if case .object(let o) = self, case .string(let code)? = o["code"] { return code }
        return nil
    }

    var text: String {
        switch self {
        case .string(let s): return s
        case .number(let n): return FormValidator.format(n)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "none"
        case .array(let items): return "[" + items.map(\.text).joined(separator: ", ") + "]"
        case .object(let o):
            if let code = code {
                let name = ["name", "label", "measure", "text"].lazy.compactMap { key -> String? in
                    if case .string(let s)? = o[key] { return s }
                    return nil
                }.first
                return name.map { "\(code) (\($0))" } ?? code
            }
            return "{" + o.keys.sorted().map { "\($0): \(o[$0]!.text)" }.joined(separator: ", ") + "}"
        }
    }
}

/// The schedule of assessments: which form is due at which visit.
public struct ScheduleGrid: Equatable, Sendable, Codable {
    public struct Row: Equatable, Sendable, Codable {
        public var visit: String
        public var name: String
        public var timing: String
        public var forms: [String]
    }
    public var forms: [String]
    public var rows: [Row]

    public init(study: StudyDefinition) {
        forms = study.forms.map(\.code)
        rows = study.visits.map { visit in
            Row(
                visit: visit.code, name: visit.name, timing: Self.timing(visit),
                forms: study.forms.filter { $0.visits.contains(visit.code) }.map(\.code))
        }
    }

    static func timing(_ visit: Visit) -> String {
        guard let anchor = visit.anchor, let target = visit.target else { return visit.defines.map { "defines \($0)" } ?? "" }
        var text = "\(anchor) \(target.value >= 0 ? "+" : "")\(target)"
        if let window = visit.window {
            if window.before == window.after {
                text += " ±\(window.after)"
            } else {
                text += " (−\(window.before) / +\(window.after))"
            }
        }
        return text
    }
}

/// Which schedule a participant enrolled under an earlier version follows once an amendment is published.
public enum AmendedSchedule {
    /// The version followed after `amendment`: unchanged for an amendment for new participants only, the amendment
    /// whole when it applies to everyone at once, and from its date otherwise (the visits and doses due before that
    /// day stay as they were, and those the amendment drops or adds count only from it).
    public static func follow(
        _ followed: StudyDefinition, then amendment: StudyDefinition, anchors: [String: Date], calendar: SiteCalendar
    ) -> StudyDefinition {
        guard let settings = amendment.amendment else { return amendment }
        if settings.appliesTo == .newParticipants { return followed }
        guard let text = settings.from, let day = DateParsing.day(text, in: calendar.zone) else { return amendment }
        let from = calendar.startOfDay(day)
        func before(_ visit: Visit) -> Bool {
            guard let anchor = visit.anchor, let offset = visit.target, let base = anchors[anchor] else { return false }
            return base.addingTimeInterval(offset.seconds) < from
        }
        func before(_ dose: PlannedDose) -> Bool {
            guard let base = anchors[dose.anchor] else { return false }
            return base.addingTimeInterval(dose.target.seconds) < from
        }
        var merged = amendment
        // Visits: those due before the day as they were; the amendment's own from the day.
        var visits = followed.visits.filter(before)
        for visit in amendment.visits where !visits.contains(where: { $0.code == visit.code }) {
            let old = followed.visits.first { $0.code == visit.code }
            if old.map(before) == true || (old == nil && before(visit)) { continue }
            visits.append(visit)
        }
        // In the amendment's order, then any earlier visit it no longer lists, where it stood before.
        let order = amendment.visits.map(\.code) + followed.visits.map(\.code)
        merged.visits = visits.sorted { (order.firstIndex(of: $0.code) ?? 0) < (order.firstIndex(of: $1.code) ?? 0) }
        // Forms of visits kept from before stay collectable there.
        for form in followed.forms {
            let keptVisits = form.visits.filter { v in merged.visits.contains { $0.code == v } && followed.visits.first { $0.code == v }.map(before) == true }
            guard !keptVisits.isEmpty else { continue }
            if let i = merged.forms.firstIndex(where: { $0.code == form.code }) {
                merged.forms[i].visits = merged.forms[i].visits + keptVisits.filter { !merged.forms[i].visits.contains($0) }
            } else {
                var kept = form
                kept.visits = keptVisits
                merged.forms.append(kept)
            }
        }
        // Doses, arm by arm, the same way.
        for (i, arm) in merged.arms.enumerated() {
            let oldDoses = followed.arms.first { $0.code == arm.code }?.doses ?? []
            var doses = oldDoses.filter(before)
            for dose in arm.doses ?? [] where !doses.contains(where: { $0.code == dose.code }) {
                let old = oldDoses.first { $0.code == dose.code }
                if old.map(before) == true || (old == nil && before(dose)) { continue }
                doses.append(dose)
            }
            merged.arms[i].doses = doses.isEmpty && arm.doses == nil ? nil : doses
        }
        return merged
    }
}
