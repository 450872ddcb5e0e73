import Foundation
import TrialDomain

/// ClinicalTrials.gov API v2 study JSON (`protocolSection` and its modules) to a draft definition.
extension RegistryImport {
    /// Typed access to the JSON that names the field at fault.
    struct Node {
        var value: Any?
        var path: String

        subscript(key: String) -> Node {
            Node(value: (value as? [String: Any])?[key], path: path.isEmpty ? key : "\(path).\(key)")
        }

        func object(required: Bool = false) throws -> [String: Any]? {
            if value == nil || value is NSNull {
                if required { throw RegistryImportError(location: "field \(path)", problem: "is required") }
                return nil
            }
            guard let object = value as? [String: Any] else { throw RegistryImportError(location: "field \(path)", problem: "must be an object") }
            return object
        }

        func string(required: Bool = false) throws -> String? {
            if value == nil || value is NSNull {
                if required { throw RegistryImportError(location: "field \(path)", problem: "is required") }
                return nil
            }
            guard let text = value as? String else { throw RegistryImportError(location: "field \(path)", problem: "must be a string") }
            return text
        }

        func int() throws -> Int? {
            if value == nil || value is NSNull { return nil }
            guard let number = value as? NSNumber, !(value is String), number.doubleValue == number.doubleValue.rounded() else {
                throw RegistryImportError(location: "field \(path)", problem: "must be a whole number")
            }
            return number.intValue
        }

        func list() throws -> [Node] {
            if value == nil || value is NSNull { return [] }
            guard let items = value as? [Any] else { throw RegistryImportError(location: "field \(path)", problem: "must be a list") }
            return items.enumerated().map { Node(value: $1, path: "\(path)[\($0)]") }
        }

        func date() throws -> String? {
            guard let text = try string() else { return nil }
            // The registry writes "2018-03" for month-precision dates.
            if StudyValidator.isDate(text) { return text }
            if text.count == 7, StudyValidator.isDate(text + "-01") { return text + "-01" }
            throw RegistryImportError(location: "field \(path)", problem: "must be a date as yyyy-MM-dd or yyyy-MM, found '\(text)'")
        }
    }

    public static func fromClinicalTrialsGov(_ text: String, source: String) throws -> RegistryDraft {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            throw RegistryImportError(location: "file", problem: "not valid JSON")
        }
        let root = Node(value: json, path: "")
        let study = root["protocolSection"]
        _ = try study.object(required: true)
        var todos: [String] = []

        let identification = study["identificationModule"]
        _ = try identification.object(required: true)
        let nctID = try identification["nctId"].string(required: true)!
        let briefTitle = try identification["briefTitle"].string(required: true)!
        let officialTitle = try identification["officialTitle"].string() ?? briefTitle

        let statusModule = study["statusModule"]
        let overall = try statusModule["overallStatus"].string(required: true)!
        guard let status = status(fromRegistry: overall) else {
            throw RegistryImportError(location: "field \(statusModule["overallStatus"].path)", problem: "unknown status '\(overall)'")
        }
        let start = try statusModule["startDateStruct"]["date"].date()
        let primaryCompletion = try statusModule["primaryCompletionDateStruct"]["date"].date()
        let completion = try statusModule["completionDateStruct"]["date"].date()
        let updated = try statusModule["lastUpdatePostDateStruct"]["date"].date()
        let whyStopped = try statusModule["whyStopped"].string()

        let design = study["designModule"]
        let phases = try design["phases"].list().map { try $0.string(required: true)! }
        if phases.count > 1 { todos.append("identity.phase: the record lists \(phases.joined(separator: ", ")); the first was taken") }
        let designInfo = design["designInfo"]
        let enrollment = design["enrollmentInfo"]
        let enrollmentCount = try enrollment["count"].int()
        let enrollmentType = try enrollment["type"].string()

        let sponsor = try study["sponsorCollaboratorsModule"]["leadSponsor"]["name"].string() ?? ""
        let conditions = try study["conditionsModule"]["conditions"].list().compactMap { try $0.string() }

        let armsModule = study["armsInterventionsModule"]
        var interventions: [[String: Any]] = []
        var interventionCodes: [String: String] = [:]
        for node in try armsModule["interventions"].list() {
            let name = try node["name"].string(required: true)!
            let type = try node["type"].string() ?? "OTHER"
            let c = code(name)
            interventionCodes["\(type.capitalized.replacingOccurrences(of: "_", with: " ")): \(name)".lowercased()] = c
            interventionCodes[name.lowercased()] = c
            var item: [String: Any] = ["code": c, "name": name, "type": type]
            if let description = try node["description"].string() { item["description"] = description }
            interventions.append(item)
            todos.append("interventions[\(c)]: enter dose, unit and route (the registry gives them only as free text)")
        }
        var arms: [[String: Any]] = []
        for node in try armsModule["armGroups"].list() {
            let label = try node["label"].string(required: true)!
            let names = try node["interventionNames"].list().compactMap { try $0.string() }
            // "Drug: GET73" names the intervention "GET73" of type DRUG.
            let codes = names.map { name in
                interventionCodes[name.lowercased()]
                    ?? interventionCodes[String(name.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces).lowercased()]
                    ?? code(name)
            }
            var arm: [String: Any] = ["code": code(label), "name": label, "type": try node["type"].string() ?? "OTHER", "ratio": 1, "interventions": codes]
            if let description = try node["description"].string() { arm["description"] = description }
            arms.append(arm)
        }
        if arms.count > 1 { todos.append("arms: the registry does not give the allocation ratio; 1 for each arm was assumed") }

        var endpoints: [[String: Any]] = []
        for (kind, key) in [("primary", "primaryOutcomes"), ("secondary", "secondaryOutcomes"), ("other", "otherOutcomes")] {
            for (i, node) in try study["outcomesModule"][key].list().enumerated() {
                var endpoint: [String: Any] = [
                    "code": "\(kind)_\(i + 1)", "kind": kind, "measure": try node["measure"].string(required: true)!,
                    "timeFrame": try node["timeFrame"].string() ?? "",
                ]
                if let description = try node["description"].string() { endpoint["description"] = description }
                endpoints.append(endpoint)
            }
        }
        if !endpoints.contains(where: { $0["kind"] as? String == "primary" }) { todos.append("endpoints: the record has no primary outcome") }

        let eligibility = study["eligibilityModule"]
        let criteria = splitCriteria(try eligibility["eligibilityCriteria"].string() ?? "")
        if let minimum = try eligibility["minimumAge"].string() { todos.append("eligibility: the registry's minimum age is \(minimum)") }
        if let maximum = try eligibility["maximumAge"].string() { todos.append("eligibility: the registry's maximum age is \(maximum)") }
        todos.append("eligibility: write an expression over form data for each criterion (\(criteria.inclusion.count) inclusion, \(criteria.exclusion.count) exclusion)")

        let tree = draftTree(
            code: nctID,
            identity: [
                "title": officialTitle, "shortTitle": briefTitle, "acronym": try identification["acronym"].string() ?? "", "registryIds": [nctID],
                "sponsor": sponsor, "products": interventions.compactMap { $0["name"] as? String }, "conditions": conditions,
                "phase": phases.first ?? "NA", "studyType": try design["studyType"].string() ?? "INTERVENTIONAL",
                "allocation": try designInfo["allocation"].string() ?? "NA", "interventionModel": try designInfo["interventionModel"].string() ?? "NA",
                "masking": try designInfo["maskingInfo"]["masking"].string() ?? "NONE", "purpose": try designInfo["primaryPurpose"].string() ?? "OTHER",
                "description": try study["descriptionModule"]["briefSummary"].string() ?? "",
            ],
            status: status, statusDate: updated ?? start ?? "", whyStopped: whyStopped,
            enrollmentActual: enrollmentType == "ACTUAL" ? enrollmentCount : nil,
            dates: ["start": start, "primaryCompletion": primaryCompletion, "completion": completion, "recordUpdated": updated],
            arms: arms, interventions: interventions, endpoints: endpoints, criteria: criteria, todos: &todos)
        var result = tree
        if enrollmentType == "ESTIMATED", let enrollmentCount {
            result["lifecycle"] = (tree["lifecycle"] as? [String: Any] ?? [:]).merging(["enrollment": ["target": enrollmentCount]]) { $1 }
            todos.removeAll { $0.hasPrefix("lifecycle.enrollment.target") }
        }
        return RegistryDraft(source: source, tree: result, todos: todos)
    }
}
