import Foundation

/// One CTCAE term with its grade definitions, from NCI's table.
public struct CTCAETerm: Codable, Equatable, Sendable {
    public var version: String
    public var meddra: String
    public var soc: String
    public var term: String
    /// Grades 1–5; nil where the table has "-" (no such grade for the term).
    public var grades: [String?]
    public var definition: String

    public init(version: String, meddra: String, soc: String, term: String, grades: [String?], definition: String) {
        self.version = version
        self.meddra = meddra
        self.soc = soc
        self.term = term
        self.grades = grades
        self.definition = definition
    }
}

public struct CatalogueError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var problem: String
    public var description: String { "line \(line): \(problem)" }
}

/// Reads NCI's CTCAE table (CSV: MedDRA code, SOC, term, grades 1–5, definition, …); a malformed file is refused whole.
public enum CTCAECatalogue {
    public static func parse(_ text: String, version: String) throws -> [CTCAETerm] {
        let rows = try CSV.rows(text)
        guard let header = rows.first, header.count >= 9, header[0].lowercased().contains("meddra"), header[2].lowercased().contains("term") else {
            throw CatalogueError(line: 1, problem: "expected NCI's header: MedDRA code, SOC, term, Grade 1…5, definition")
        }
        var terms: [CTCAETerm] = []
        var seen: Set<String> = []
        for (index, row) in rows.enumerated().dropFirst() {
            let line = index + 1
            if row.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard row.count >= 9 else { throw CatalogueError(line: line, problem: "has \(row.count) columns, expected at least 9") }
            let code = row[0].trimmingCharacters(in: .whitespaces)
            guard code.count == 8, code.allSatisfy(\.isNumber) else { throw CatalogueError(line: line, problem: "MedDRA code '\(code)' is not 8 digits") }
            let term = row[2].trimmingCharacters(in: .whitespaces)
            guard !term.isEmpty else { throw CatalogueError(line: line, problem: "the term is empty") }
            guard seen.insert(code).inserted else { throw CatalogueError(line: line, problem: "MedDRA code \(code) appears twice") }
            let grades = row[3...7].map { cell -> String? in
                let t = cell.trimmingCharacters(in: .whitespaces)
                return t.isEmpty || t == "-" ? nil : t
            }
            guard grades.contains(where: { $0 != nil }) else { throw CatalogueError(line: line, problem: "term '\(term)' defines no grade") }
            terms.append(CTCAETerm(version: version, meddra: code, soc: row[1].trimmingCharacters(in: .whitespaces), term: term, grades: grades, definition: row[8]))
        }
        guard !terms.isEmpty else { throw CatalogueError(line: 2, problem: "the file holds no terms") }
        return terms
    }
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks.
enum CSV {
    static func rows(_ text: String) throws -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, line = 1, quoteLine = 1
        var scalars = Array(text.unicodeScalars)[...]
        while let c = scalars.popFirst() {
            if quoted {
                if c == "\"" {
                    if scalars.first == "\"" { field.unicodeScalars.append("\""); scalars.removeFirst() } else { quoted = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                guard field.isEmpty else { throw CatalogueError(line: line, problem: "a quote inside an unquoted field") }
                quoted = true
                quoteLine = line
            case ",": row.append(field); field = ""
            case "\r": continue
            case "\n":
                row.append(field); rows.append(row); row = []; field = ""; line += 1
            default: field.unicodeScalars.append(c)
            }
        }
        if quoted { throw CatalogueError(line: quoteLine, problem: "a quoted field opened here is never closed") }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}

/// ICH E2A seriousness criteria.
public enum Seriousness: String, Codable, CaseIterable, Sendable {
    case death, lifeThreatening = "life_threatening", hospitalization, disability, congenitalAnomaly = "congenital_anomaly"
    case importantMedicalEvent = "important_medical_event"
}

public enum Attribution: String, Codable, CaseIterable, Sendable {
    case unrelated, unlikely, possible, probable, definite
}

/// The sponsor-notification clock of a serious adverse event: it runs in elapsed time from the site's awareness,
/// so midnight and daylight-saving changes neither stop nor stretch it.
public struct ReportingClock: Codable, Equatable, Sendable {
    public var awareAt: Date
    public var hours: Int
    public var reportedAt: Date?

    public init(awareAt: Date, hours: Int, reportedAt: Date? = nil) {
        self.awareAt = awareAt
        self.hours = hours
        self.reportedAt = reportedAt
    }

    public var dueAt: Date { awareAt.addingTimeInterval(TimeInterval(hours) * 3600) }

    public func isOverdue(now: Date) -> Bool { (reportedAt ?? now) > dueAt }

    public func remaining(now: Date) -> TimeInterval { dueAt.timeIntervalSince(now) }
}
