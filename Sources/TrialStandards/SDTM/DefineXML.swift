import Foundation
import TrialDomain

/// Define-XML 2.1 (CDISC, on ODM 1.3.2) describing exactly the SDTM datasets given: one ItemGroupDef per dataset with
/// its def:leaf pointing at the transport file, an ItemDef per variable (and per value-level item), the codelists the
/// variables use, a MethodDef per derivation, and CommentDefs where a variable or dataset needs a word (a blinded
/// transfer says so on the MetaDataVersion). Checked against the Define-XML 2.1 schemas by scripts/check_define.py.
public enum DefineXML {
    static let odm = "http://www.cdisc.org/ns/odm/v1.3"
    static let def = "http://www.cdisc.org/ns/def/v2.1"
    static let xlink = "http://www.w3.org/1999/xlink"

    /// `domains`: as `SDTMExport.domains`, or as `SDTMExport.write` returns them (with the lengths written).
    public static func document(study: StudyDefinition, domains: [SDTMDomain], blinded: Bool, created: Date = Date()) -> String {
        // ODM wants at least one item or a dictionary in a codelist: an empty one is neither written nor referenced.
        let domains = domains.map { domain in
            var domain = domain
            for index in domain.variables.indices {
                if let list = domain.variables[index].codeList, list.terms.isEmpty, list.dictionary == nil { domain.variables[index].codeList = nil }
            }
            return domain
        }
        var x = DefineXMLText()
        let code = SDTMText.ascii(study.code)
        let mdv = "MDV.\(code).\(study.version)\(blinded ? ".BLINDED" : "")"
        x.line(#"<?xml version="1.0" encoding="UTF-8"?>"#)
        x.open(
            "ODM",
            [
                ("xmlns", odm), ("xmlns:def", def), ("xmlns:xlink", xlink), ("FileType", "Snapshot"), ("FileOID", "Casebook.\(code).\(study.version).Define-XML_2.1.0"),
                ("ODMVersion", "1.3.2"), ("CreationDateTime", timestamp(created)), ("Originator", "Casebook"), ("SourceSystem", "Casebook"),
                ("def:Context", "Submission"),
            ])
        x.open("Study", [("OID", "ST.\(code)")])
        x.open("GlobalVariables")
        x.leaf("StudyName", text: code)
        x.leaf("StudyDescription", text: study.identity.title)
        x.leaf("ProtocolName", text: code)
        x.close("GlobalVariables")

        let blindingComment = "COM.BLINDED"
        x.open(
            "MetaDataVersion",
            [
                ("OID", mdv), ("Name", "\(code) SDTM datasets, study definition version \(study.version)\(blinded ? " (blinded)" : "")"),
                ("Description", "SDTMIG 3.3 datasets of \(study.identity.shortTitle), made by Casebook from the study definition and its records."),
                ("def:DefineVersion", "2.1.0"), ("def:CommentOID", blinded ? blindingComment : nil),
            ])
        x.open("def:Standards")
        x.empty("def:Standard", [("OID", "STD.SDTMIG"), ("Name", "SDTMIG"), ("Type", "IG"), ("Version", "3.3"), ("Status", "Final")])
        x.empty(
            "def:Standard",
            [("OID", "STD.CT"), ("Name", "CDISC/NCI"), ("Type", "CT"), ("PublishingSet", "SDTM"), ("Version", CDISCTerminology.version), ("Status", "Final")])
        x.close("def:Standards")

        // Value-level metadata first (the schema orders ValueListDef and WhereClauseDef before the ItemGroupDefs).
        for domain in domains {
            for variable in domain.variables where !variable.valueList.isEmpty {
                x.open("def:ValueListDef", [("OID", "VL.\(domain.name).\(variable.name)")])
                for (index, item) in variable.valueList.enumerated() {
                    x.open("ItemRef", [("ItemOID", valueItemOID(domain, variable, item)), ("OrderNumber", String(index + 1)), ("Mandatory", "No")])
                    x.empty("def:WhereClauseRef", [("WhereClauseOID", whereOID(domain, variable, item))])
                    x.close("ItemRef")
                }
                x.close("def:ValueListDef")
            }
        }
        for domain in domains {
            for variable in domain.variables {
                for item in variable.valueList {
                    x.open("def:WhereClauseDef", [("OID", whereOID(domain, variable, item))])
                    x.open("RangeCheck", [("Comparator", "EQ"), ("SoftHard", "Soft"), ("def:ItemOID", "IT.\(domain.name).\(item.whereVariable)")])
                    x.leaf("CheckValue", text: item.whereValue)
                    x.close("RangeCheck")
                    x.close("def:WhereClauseDef")
                }
            }
        }

        var comments: [(oid: String, text: String)] = []
        if blinded {
            comments.append((
                blindingComment,
                "Blinded transfer: DM leaves out ARMCD, ARM, ACTARMCD, ACTARM, ARMNRS and ACTARMUD; TA is not included and TE shows one blinded treatment element; exposure is given as collected in EC, with masked treatment names and dose amounts only where every arm plans the same, in place of EX."
            ))
        }
        for domain in domains {
            var comment: String?
            if let text = domain.comment {
                comment = "COM.\(domain.name)"
                comments.append(("COM.\(domain.name)", text))
            }
            x.open(
                "ItemGroupDef",
                [
                    ("OID", "IG.\(domain.name)"), ("Name", domain.name), ("Repeating", domain.isRepeating ? "Yes" : "No"),
                    ("IsReferenceData", domain.isReferenceData ? "Yes" : "No"), ("SASDatasetName", domain.name), ("Domain", domain.name), ("Purpose", "Tabulation"),
                    ("def:Structure", domain.structure), ("def:StandardOID", "STD.SDTMIG"), ("def:ArchiveLocationID", "LF.\(domain.name)"), ("def:CommentOID", comment),
                ])
            x.description(domain.label)
            for (index, variable) in domain.variables.enumerated() {
                let key = domain.keys.firstIndex(of: variable.name).map { String($0 + 1) }
                x.empty(
                    "ItemRef",
                    [
                        ("ItemOID", "IT.\(domain.name).\(variable.name)"), ("OrderNumber", String(index + 1)), ("Mandatory", variable.core == .required ? "Yes" : "No"),
                        ("KeySequence", key), ("MethodOID", variable.method?.oid), ("Role", variable.role.rawValue),
                    ])
            }
            x.empty("def:Class", [("Name", domain.sdtmClass.rawValue)])
            x.open("def:leaf", [("ID", "LF.\(domain.name)"), ("xlink:href", domain.fileName)])
            x.leaf("def:title", text: domain.fileName)
            x.close("def:leaf")
            x.close("ItemGroupDef")
        }

        for domain in domains {
            for variable in domain.variables {
                var comment: String?
                if let text = variable.comment {
                    comment = "COM.\(domain.name).\(variable.name)"
                    comments.append(("COM.\(domain.name).\(variable.name)", text))
                }
                x.open("ItemDef", itemAttributes("IT.\(domain.name).\(variable.name)", variable.name, variable.type, variable.length, variable.significantDigits, comment))
                x.description(variable.label)
                if let list = variable.codeList { x.empty("CodeListRef", [("CodeListOID", list.oid)]) }
                x.origin(variable.origin)
                if !variable.valueList.isEmpty { x.empty("def:ValueListRef", [("ValueListOID", "VL.\(domain.name).\(variable.name)")]) }
                x.close("ItemDef")
                for item in variable.valueList {
                    x.open("ItemDef", itemAttributes(valueItemOID(domain, variable, item), variable.name, item.type, item.length, item.significantDigits, nil))
                    x.description(item.description)
                    if let list = item.codeList { x.empty("CodeListRef", [("CodeListOID", list.oid)]) }
                    x.origin(item.origin)
                    x.close("ItemDef")
                }
            }
        }

        var lists: [String: SDTMCodeList] = [:]
        var order: [String] = []
        for domain in domains {
            for variable in domain.variables {
                for list in [variable.codeList] + variable.valueList.map(\.codeList) {
                    guard let list, lists[list.oid] == nil else { continue }
                    lists[list.oid] = list
                    order.append(list.oid)
                }
            }
        }
        for oid in order {
            guard let list = lists[oid] else { continue }
            x.open(
                "CodeList",
                [
                    ("OID", list.oid), ("Name", list.name), ("DataType", list.dataType == .float ? "float" : list.dataType == .integer ? "integer" : "text"),
                    ("def:StandardOID", list.isStandard ? "STD.CT" : nil), ("def:IsNonStandard", list.isStandard ? nil : "Yes"),
                ])
            if let dictionary = list.dictionary {
                x.empty("ExternalCodeList", [("Dictionary", dictionary.name), ("Version", dictionary.version)])
            } else {
                // Define-XML 2.1: one codelist holds either decoded items or enumerated ones, not both.
                let decoded = list.terms.contains { $0.decode != nil }
                for (index, term) in list.terms.enumerated() {
                    let element = decoded ? "CodeListItem" : "EnumeratedItem"
                    let attributes = [("CodedValue", term.value), ("OrderNumber", String(index + 1))]
                    guard decoded || term.nci != nil else {
                        x.empty(element, attributes)
                        continue
                    }
                    x.open(element, attributes)
                    if decoded {
                        x.open("Decode")
                        x.leaf("TranslatedText", [("xml:lang", "en")], text: term.decode ?? term.value)
                        x.close("Decode")
                    }
                    if let nci = term.nci { x.empty("Alias", [("Context", "nci:ExtCodeID"), ("Name", nci)]) }
                    x.close(element)
                }
            }
            if let nci = list.nci { x.empty("Alias", [("Context", "nci:ExtCodeID"), ("Name", nci)]) }
            x.close("CodeList")
        }

        var methods: [String: SDTMMethod] = [:]
        var methodOrder: [String] = []
        for variable in domains.flatMap(\.variables) {
            guard let method = variable.method, methods[method.oid] == nil else { continue }
            methods[method.oid] = method
            methodOrder.append(method.oid)
        }
        for oid in methodOrder {
            guard let method = methods[oid] else { continue }
            x.open("MethodDef", [("OID", method.oid), ("Name", method.name), ("Type", "Computation")])
            x.description(method.description)
            x.close("MethodDef")
        }

        for comment in comments {
            x.open("def:CommentDef", [("OID", comment.oid)])
            x.description(comment.text)
            x.close("def:CommentDef")
        }
        x.close("MetaDataVersion")
        x.close("Study")
        x.close("ODM")
        return x.text
    }

    static func valueItemOID(_ domain: SDTMDomain, _ variable: SDTMVariable, _ item: SDTMValueListItem) -> String {
        "IT.\(domain.name).\(variable.name).\(oidPart(item.whereValue))"
    }

    static func whereOID(_ domain: SDTMDomain, _ variable: SDTMVariable, _ item: SDTMValueListItem) -> String {
        "WC.\(domain.name).\(variable.name).\(item.whereVariable).\(oidPart(item.whereValue))"
    }

    /// OIDs are xs:string, but keeping them to letters, digits, dots and underscores keeps them readable everywhere.
    static func oidPart(_ text: String) -> String {
        String(SDTMText.ascii(text).map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    /// Define-XML 2.1: Length for text, integer and float; none for ISO 8601 types; SignificantDigits for floats only.
    static func itemAttributes(_ oid: String, _ name: String, _ type: SDTMDataType, _ length: Int?, _ digits: Int?, _ comment: String?) -> [(String, String?)] {
        let sized = type == .text || type.isNumeric
        return [
            ("OID", oid), ("Name", name), ("DataType", type.rawValue), ("Length", sized ? length.map(String.init) : nil),
            ("SignificantDigits", type == .float ? digits.map(String.init) : nil), ("SASFieldName", name), ("def:CommentOID", comment),
        ]
    }

    /// xs:dateTime with the offset, as ODM's CreationDateTime wants.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// An indented XML writer for the few shapes Define-XML needs; attributes with a nil value are left out.
struct DefineXMLText {
    private(set) var text = ""
    private var depth = 0

    mutating func line(_ s: String) { text += String(repeating: "  ", count: depth) + s + "\n" }

    static func escape(_ s: String, attribute: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where attribute: out += "&quot;"
            case "\n" where attribute: out += "&#10;"
            default:
                // XML 1.0 allows no control characters but tab, newline and carriage return.
                if ch.value < 0x20 && ch != "\t" && ch != "\n" && ch != "\r" { out += " " } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }

    private func attributes(_ list: [(String, String?)]) -> String {
        list.compactMap { name, value in value.map { " \(name)=\"\(Self.escape($0, attribute: true))\"" } }.joined()
    }

    mutating func open(_ name: String, _ list: [(String, String?)] = []) {
        line("<\(name)\(attributes(list))>")
        depth += 1
    }

    mutating func close(_ name: String) {
        depth -= 1
        line("</\(name)>")
    }

    mutating func empty(_ name: String, _ list: [(String, String?)]) { line("<\(name)\(attributes(list))/>") }

    mutating func leaf(_ name: String, _ list: [(String, String?)] = [], text: String) {
        line("<\(name)\(attributes(list))>\(Self.escape(text))</\(name)>")
    }

    mutating func description(_ text: String) {
        open("Description")
        leaf("TranslatedText", [("xml:lang", "en")], text: text)
        close("Description")
    }

    /// Define-XML 2.1 def:Origin: collected data come from the investigator, derivations and assignments from the
    /// sponsor; the protocol's own values have no source.
    mutating func origin(_ type: SDTMOriginType) {
        let source: String? =
            switch type {
            case .collected: "Investigator"
            case .derived, .assigned: "Sponsor"
            case .protocolDefined: nil
            }
        empty("def:Origin", [("Type", type.rawValue), ("Source", source)])
    }
}
