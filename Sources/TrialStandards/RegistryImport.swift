import Foundation
import TrialDomain
import Yams

/// Turns a registry record into a draft study definition: what the record states is filled in,
/// what it leaves open becomes a to-do item.
public struct RegistryDraft {
    public var source: String
    /// The draft as a tree with the definition file's keys, ready to write as YAML.
    public var tree: [String: Any]
    public var todos: [String]

    public func yaml() throws -> String {
        let header = (["# Draft study definition imported from \(source).", "# To do before publishing:"]
            + todos.map { "#  - \($0)" }).joined(separator: "\n")
        return header + "\n" + (try Yams.dump(object: tree, width: -1, sortKeys: false))
    }
}

public struct RegistryImportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// "line 12" for the text record, "field protocolSection.designModule" for JSON.
    public var location: String
    public var problem: String
    public var description: String { "\(location): \(problem)" }
}

public enum RegistryImport {
    /// Detects the format from the content: a JSON object is a ClinicalTrials.gov API v2 study, anything else the plain-text record.
    public static func draft(from text: String, source: String) throws -> RegistryDraft {
        if text.drop(while: { $0.isWhitespace }).first == "{" {
            return try fromClinicalTrialsGov(text, source: source)
        }
        return try fromPlainText(text, source: source)
    }

    // MARK: Plain-text record

    static let headings = [
        "Name", "Description", "Trial arms", "Trial start", "Estimated PCD", "Trial end", "Status", "Phase", "Treatment",
        "Arms:", "Primary endpoint", "Eligibility criteria", "Protocol", "Updated at", "Product", "Indication",
    ]

    public static func fromPlainText(_ text: String, source: String) throws -> RegistryDraft {
        let lines = text.components(separatedBy: .newlines).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first == "Clinical trial" else {
            throw RegistryImportError(location: "line 1", problem: "expected 'Clinical trial' (the registry record's first line), found '\(lines.first ?? "")'")
        }
        // The title is the first non-empty line after the header.
        guard let titleIndex = lines.indices.dropFirst().first(where: { !lines[$0].isEmpty }), !headings.contains(lines[titleIndex]) else {
            throw RegistryImportError(location: "line 2", problem: "the study title is missing")
        }
        var sections: [String: (line: Int, body: [String])] = [:]
        var current: String?
        for index in (titleIndex + 1)..<lines.count {
            let line = lines[index]
            if headings.contains(line) && sections[line] == nil {
                current = line
                sections[line] = (index + 1, [])
            } else if let heading = current, !line.isEmpty, !isSummaryCount(line) {
                sections[heading]!.body.append(line)
            }
        }
        for required in ["Status", "Phase", "Primary endpoint", "Eligibility criteria"] where sections[required] == nil {
            let last = (lines.lastIndex { !$0.isEmpty } ?? 0) + 1
            throw RegistryImportError(location: "line \(last)", problem: "the record ends without a '\(required)' section")
        }

        var todos: [String] = []
        func date(_ heading: String) throws -> String? {
            guard let section = sections[heading], let value = section.body.first else { return nil }
            guard StudyValidator.isDate(value) else {
                throw RegistryImportError(location: "line \(section.line + 1)", problem: "\(heading) must be a date as yyyy-MM-dd, found '\(value)'")
            }
            return value
        }
        let start = try date("Trial start"), pcd = try date("Estimated PCD"), end = try date("Trial end"), updated = try date("Updated at")

        let statusText = sections["Status"]!.body.first ?? ""
        guard let status = status(fromRegistry: statusText) else {
            throw RegistryImportError(location: "line \(sections["Status"]!.line + 1)", problem: "unknown status '\(statusText)'")
        }

        // The Protocol block is a Python-style mapping; read it as JSON once its quotes and literals are normalised.
        var design: [String: Any] = [:]
        if let section = sections["Protocol"] {
            let literal = section.body.joined(separator: " ")
                .replacingOccurrences(of: "'", with: "\"").replacingOccurrences(of: "True", with: "true")
                .replacingOccurrences(of: "False", with: "false").replacingOccurrences(of: "None", with: "null")
            guard let parsed = (try? JSONSerialization.jsonObject(with: Data(literal.utf8))) as? [String: Any] else {
                throw RegistryImportError(location: "line \(section.line + 1)", problem: "the Protocol block is not a readable mapping")
            }
            design = parsed
        }
        let designInfo = design["designInfo"] as? [String: Any] ?? [:]
        let phaseText = sections["Phase"]!.body.first ?? ""
        let phase = phase(fromRegistry: phaseText) ?? (design["phases"] as? [String])?.first ?? "NA"
        if let listed = (design["phases"] as? [String])?.first, listed != phase {
            todos.append("phase: the record says '\(phaseText)' but its protocol block says \(listed); \(phase) was taken")
        }

        // Treatment: the product's name, then a free-text dose.
        let treatment = sections["Treatment"]?.body ?? []
        let productName = treatment.first ?? sections["Product"]?.body.first ?? "Intervention"
        let doseText = treatment.dropFirst().joined(separator: " ")
        var intervention: [String: Any] = ["code": code(productName), "name": productName, "type": "BIOLOGICAL", "description": doseText]
        if let dose = parseDose(doseText) {
            intervention["dose"] = dose.tree
            intervention["route"] = "intravenous"
            todos.append("interventions[\(code(productName))]: dose read as \(dose.summary) from '\(dose.source)'; confirm it, and the route (the record does not state one)")
        } else {
            todos.append("interventions[\(code(productName))]: the record gives no dose Casebook can read; enter dose, unit and route")
        }
        if doseText.lowercased().contains("single dose") { intervention["frequency"] = "single dose" }
        todos.append("interventions[\(code(productName))].type: the record does not say; BIOLOGICAL was assumed")

        let armNames = sections["Arms:"]?.body ?? []
        var arms: [[String: Any]] = armNames.map { name in
            ["code": code(name), "name": name, "type": "EXPERIMENTAL", "ratio": 1, "interventions": [code(productName)]]
        }
        if arms.isEmpty { todos.append("arms: the record lists none") }
        if (designInfo["allocation"] as? String) == "RANDOMIZED" && arms.count < 2 {
            todos.append("arms: the record names \(arms.count) arm but the design is RANDOMIZED; add the comparator arm and set the allocation ratio")
        }

        // Endpoints come as measure/time-frame pairs; the first pair is the primary endpoint.
        let endpointLines = sections["Primary endpoint"]!.body
        guard endpointLines.count >= 2, endpointLines.count % 2 == 0 else {
            throw RegistryImportError(
                location: "line \(sections["Primary endpoint"]!.line)", problem: "endpoints must come as pairs of measure and time frame")
        }
        var endpoints: [[String: Any]] = []
        for (i, pair) in stride(from: 0, to: endpointLines.count, by: 2).enumerated() {
            endpoints.append([
                "code": i == 0 ? "primary" : "secondary_\(i)", "kind": i == 0 ? "primary" : "secondary",
                "measure": endpointLines[pair], "timeFrame": endpointLines[pair + 1],
            ])
        }

        let criteria = splitCriteria(sections["Eligibility criteria"]!.body.joined(separator: " "))
        todos.append("eligibility: write an expression over form data for each criterion (\(criteria.inclusion.count) inclusion, \(criteria.exclusion.count) exclusion)")
        arms = arms.map { $0 }
        let enrollment = design["enrollmentInfo"] as? [String: Any]

        let tree = draftTree(
            code: code(sections["Name"]?.body.first ?? "STUDY").uppercased(),
            identity: [
                "title": lines[titleIndex], "shortTitle": sections["Name"]?.body.first ?? lines[titleIndex], "registryIds": [String](),
                "sponsor": "", "products": sections["Product"]?.body ?? [productName], "conditions": sections["Indication"]?.body ?? [],
                "phase": phase, "studyType": design["studyType"] as? String ?? "INTERVENTIONAL",
                "allocation": designInfo["allocation"] as? String ?? "NA", "interventionModel": designInfo["interventionModel"] as? String ?? "NA",
                "masking": (designInfo["maskingInfo"] as? [String: Any])?["masking"] as? String ?? "NONE",
                "purpose": designInfo["primaryPurpose"] as? String ?? "TREATMENT",
                "description": sections["Description"]?.body.joined(separator: " ") ?? "",
            ],
            status: status, statusDate: updated ?? start ?? "", whyStopped: nil,
            enrollmentActual: enrollment?["type"] as? String == "ACTUAL" ? enrollment?["count"] as? Int : nil,
            dates: ["start": start, "primaryCompletion": pcd, "completion": end, "recordUpdated": updated],
            arms: arms, interventions: [intervention], endpoints: endpoints, criteria: criteria, todos: &todos)
        return RegistryDraft(source: source, tree: tree, todos: todos)
    }

    static func isSummaryCount(_ line: String) -> Bool {
        // "1 organization", "2 indications": counts the record prints, not content.
        let parts = line.split(separator: " ")
        return parts.count == 2 && Int(parts[0]) != nil && ["organization", "organizations", "product", "products", "indication", "indications"].contains(String(parts[1]))
    }

    struct ParsedDose {
        var amount: Double
        var unit: String
        var volume: Double?
        var source: String
        var summary: String { Dose(amount: amount, unit: unit, volume: volume, volumeUnit: volume == nil ? nil : "mL").summary }
        var tree: [String: Any] {
            var t: [String: Any] = ["amount": amount, "unit": unit]
            if let volume { t["volume"] = volume; t["volumeUnit"] = "mL" }
            return t
        }
    }

    /// "10 E10 … particles per 100ml" is read as 10^10, as PROTOCOL.md reads the seed record ("10 E" as "10 to the");
    /// any other number before E is a mantissa: "2 E9" is 2 × 10^9. The importer always asks for confirmation.
    static func parseDose(_ text: String) -> ParsedDose? {
        let pattern = #"(\d+(?:\.\d+)?)\s*[Ee]\s*(\d+)\s+([A-Za-z-]+\s+)?(particles|cells|mg|g|ml|mL)"#
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let mantissaRange = Range(match.range(at: 1), in: text), let mantissa = Double(text[mantissaRange]),
            let exponentRange = Range(match.range(at: 2), in: text), let exponent = Double(text[exponentRange]),
            let unitRange = Range(match.range(at: 4), in: text), let whole = Range(match.range, in: text)
        else { return nil }
        var volume: Double?
        if let volumeRegex = try? NSRegularExpression(pattern: #"per\s+(\d+(?:\.\d+)?)\s*ml"#, options: .caseInsensitive),
            let v = volumeRegex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), let r = Range(v.range(at: 1), in: text)
        {
            volume = Double(text[r])
        }
        return ParsedDose(amount: mantissa == 10 ? pow(10, exponent) : mantissa * pow(10, exponent), unit: String(text[unitRange]), volume: volume, source: String(text[whole]))
    }

    /// Splits "Inclusion Criteria: * a; * b; Exclusion Criteria: * c" into items.
    static func splitCriteria(_ text: String) -> (inclusion: [String], exclusion: [String]) {
        let normal = text.replacingOccurrences(of: "\\[", with: "[").replacingOccurrences(of: "\\]", with: "]")
            .replacingOccurrences(of: "\\<", with: "<").replacingOccurrences(of: "\\>", with: ">")
        let lower = normal.lowercased()
        let exclusionStart = lower.range(of: "exclusion criteria")
        let inclusionText = exclusionStart.map { String(normal[..<$0.lowerBound]) } ?? normal
        let exclusionText = exclusionStart.map { String(normal[$0.upperBound...]) } ?? ""
        func items(_ block: String) -> [String] {
            let body = block.replacingOccurrences(of: "Inclusion Criteria:", with: "", options: .caseInsensitive)
            return body.components(separatedBy: CharacterSet(charactersIn: "*\n")).map {
                $0.trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: ":;"))).trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty && $0 != ":" }
            .flatMap { item -> [String] in
                // "…disease; Requiring liver transplantation…" holds two criteria in one bullet.
                item.components(separatedBy: "; ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "; ")) }.filter { !$0.isEmpty }
            }
        }
        return (items(inclusionText), items(exclusionText))
    }

    static func status(fromRegistry text: String) -> StudyStatus? {
        let key = text.uppercased().replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: ",", with: "")
        switch key {
        case "ENROLLING_BY_INVITATION": return .recruiting
        default: return StudyStatus(rawValue: key.lowercased())
        }
    }

    static func phase(fromRegistry text: String) -> String? {
        switch text.lowercased().replacingOccurrences(of: " ", with: "") {
        case "earlyphasei", "earlyphase1", "early_phase1": "EARLY_PHASE1"
        case "phasei", "phase1": "PHASE1"
        case "phasei/ii", "phase1/phase2", "phase1/2": "PHASE1_PHASE2"
        case "phaseii", "phase2": "PHASE2"
        case "phaseii/iii", "phase2/phase3", "phase2/3": "PHASE2_PHASE3"
        case "phaseiii", "phase3": "PHASE3"
        case "phaseiv", "phase4": "PHASE4"
        default: nil
        }
    }

    static func code(_ name: String) -> String {
        let mapped = name.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        return mapped.split(separator: "_").joined(separator: "_")
    }

    /// The definition file's shape, with empty sections for what a registry record never states.
    static func draftTree(
        code: String, identity: [String: Any], status: StudyStatus, statusDate: String, whyStopped: String?, enrollmentActual: Int?,
        dates: [String: String?], arms: [[String: Any]], interventions: [[String: Any]], endpoints: [[String: Any]],
        criteria: (inclusion: [String], exclusion: [String]), todos: inout [String]
    ) -> [String: Any] {
        var change: [String: Any] = ["status": status.rawValue, "date": statusDate]
        if status.needsReason {
            if let whyStopped, !whyStopped.isEmpty {
                change["reason"] = whyStopped
            } else {
                change["reason"] = ""
                todos.append("lifecycle.history: the record says \(status.rawValue) without a reason; enter it")
            }
        }
        todos += [
            "sites: the record names no site; add each site with its code and parameters (ULNs)",
            "identity.sponsor: enter the sponsor",
            "anchors, visits and forms: the record gives no schedule of assessments",
            "randomization: block sizes, strata and allocation window are not in the record",
            "consent: enter the informed-consent form's versions",
            "lifecycle.enrollment.target: set the planned enrolment",
        ]
        let inclusion: [[String: Any]] = criteria.inclusion.enumerated().map { ["code": "in_\($0 + 1)", "text": $1, "expression": ""] }
        let exclusion: [[String: Any]] = criteria.exclusion.enumerated().map { ["code": "ex_\($0 + 1)", "text": $1, "expression": ""] }
        var dateTree: [String: Any] = [:]
        for (key, value) in dates { if let value { dateTree[key] = value } }
        var enrollment: [String: Any] = [:]
        if let enrollmentActual { enrollment["actual"] = enrollmentActual }
        return [
            "schemaVersion": StudyDefinition.currentSchemaVersion, "code": code, "version": 1, "identity": identity,
            "lifecycle": ["history": [change], "enrollment": enrollment, "dates": dateTree] ,
            "sites": [[String: Any]](), "parameters": [[String: Any]](), "arms": arms, "interventions": interventions,
            "anchors": [[String: Any]](), "visits": [[String: Any]](), "forms": [[String: Any]](),
            "eligibility": ["inclusion": inclusion, "exclusion": exclusion] , "endpoints": endpoints,
            "randomization": ["method": "permuted_blocks", "blockSizes": [Int](), "stratifyBySite": true, "factors": [[String: Any]]()] ,
            "consent": ["current": "", "versions": [[String: Any]]()] ,
            "safety": ["ctcaeVersion": "", "saeReportingHours": 24, "gradeAgainstBaseline": true] ,
        ]
    }
}
