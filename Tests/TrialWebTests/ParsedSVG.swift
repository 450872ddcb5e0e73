import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// An SVG read back with Foundation's XML parser: every element with its attributes and its own text.
final class ParsedSVG: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        var text: String
    }

    private(set) var elements: [Element] = []
    private var open: [Int] = []

    static func parse(_ svg: String) throws -> ParsedSVG {
        let parser = XMLParser(data: Data(svg.utf8))
        let parsed = ParsedSVG()
        parser.delegate = parsed
        guard parser.parse() else {
            throw parser.parserError ?? NSError(domain: "ParsedSVG", code: 1, userInfo: [NSLocalizedDescriptionKey: "unparsable"])
        }
        return parsed
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        open.append(elements.count)
        elements.append(Element(name: elementName, attributes: attributeDict, text: ""))
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        open.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let index = open.last { elements[index].text += string }
    }

    func named(_ name: String) -> [Element] { elements.filter { $0.name == name } }
    func classed(_ name: String) -> [Element] { elements.filter { $0.attributes["class"] == name } }
    /// All drawn text, line after line; wrapped labels read whole again since lines break at spaces.
    var drawn: String { named("text").map(\.text).joined(separator: " ") }
    var desc: String { named("desc").first?.text ?? "" }
}
