/// A minimal XML element tree, enough for S3's response bodies.
///
/// S3 answers with small, flat documents (`Error`, `ListBucketResult`, `CopyObjectResult`); a full XML stack
/// (libxml2 through FoundationXML) would be a native dependency for very little. Attributes and namespaces are
/// read past, entities and CDATA are decoded, and any malformed input throws instead of guessing.
struct XMLElement: Sendable, Equatable {
    var name: String
    var text: String
    var children: [XMLElement]

    /// The first child named `name`.
    func child(_ name: String) -> XMLElement? {
        self.children.first { $0.name == name }
    }

    /// Every child named `name`, in document order.
    func children(_ name: String) -> [XMLElement] {
        self.children.filter { $0.name == name }
    }

    /// The text of the first child named `name`.
    func text(of name: String) -> String? {
        self.child(name)?.text
    }

    struct ParseError: Error, Sendable, CustomStringConvertible {
        var message: String
        var offset: Int
        var description: String { "XML: \(self.message) at byte \(self.offset)" }
    }

    /// Parses a document and returns its root element.
    static func parse(_ bytes: some Collection<UInt8>) throws -> XMLElement {
        var parser = Parser(Array(bytes))
        return try parser.document()
    }
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func fail(_ message: String) -> XMLElement.ParseError {
        XMLElement.ParseError(message: message, offset: self.index)
    }

    private var atEnd: Bool { self.index >= self.bytes.count }

    private func peek(_ literal: String) -> Bool {
        let utf8 = Array(literal.utf8)
        guard self.index + utf8.count <= self.bytes.count else { return false }
        return Array(self.bytes[self.index..<self.index + utf8.count]) == utf8
    }

    private mutating func skipWhitespace() {
        while !self.atEnd, [0x20, 0x09, 0x0A, 0x0D].contains(self.bytes[self.index]) {
            self.index += 1
        }
    }

    /// Skips past the next occurrence of `terminator`, throwing if it never comes.
    private mutating func skip(past terminator: String) throws {
        while !self.atEnd {
            if self.peek(terminator) {
                self.index += terminator.utf8.count
                return
            }
            self.index += 1
        }
        throw self.fail("unterminated construct, expected \(terminator)")
    }

    /// Skips the prolog, comments and processing instructions before or after the root.
    private mutating func skipMisc() throws {
        while true {
            self.skipWhitespace()
            if self.peek("<?") {
                try self.skip(past: "?>")
            } else if self.peek("<!--") {
                try self.skip(past: "-->")
            } else if self.peek("<!DOCTYPE") {
                // A DTD could declare entities that expand without bound; S3 never sends one.
                throw self.fail("document type declarations are not accepted")
            } else {
                return
            }
        }
    }

    mutating func document() throws -> XMLElement {
        try self.skipMisc()
        guard self.peek("<") else { throw self.fail("expected a root element") }
        let root = try self.element(depth: 0)
        try self.skipMisc()
        guard self.atEnd else { throw self.fail("content after the root element") }
        return root
    }

    private mutating func name() throws -> String {
        let start = self.index
        while !self.atEnd {
            let byte = self.bytes[self.index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: ">")
                || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
            {
                break
            }
            self.index += 1
        }
        guard self.index > start else { throw self.fail("expected a name") }
        let full = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        // Namespaces are not needed for S3: keep the local part.
        if let colon = full.lastIndex(of: ":") {
            return String(full[full.index(after: colon)...])
        }
        return full
    }

    private mutating func element(depth: Int) throws -> XMLElement {
        guard depth < 64 else { throw self.fail("elements nested too deeply") }
        self.index += 1  // "<"
        let name = try self.name()
        // Attributes: skip them, respecting quoted values that may contain ">".
        while true {
            self.skipWhitespace()
            guard !self.atEnd else { throw self.fail("unterminated start tag <\(name)>") }
            if self.peek("/>") {
                self.index += 2
                return XMLElement(name: name, text: "", children: [])
            }
            if self.peek(">") {
                self.index += 1
                break
            }
            _ = try self.name()
            self.skipWhitespace()
            guard self.peek("=") else { throw self.fail("expected = in an attribute of <\(name)>") }
            self.index += 1
            self.skipWhitespace()
            guard !self.atEnd else { throw self.fail("unterminated attribute") }
            let quote = self.bytes[self.index]
            guard quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                throw self.fail("attribute values must be quoted")
            }
            self.index += 1
            while !self.atEnd, self.bytes[self.index] != quote { self.index += 1 }
            guard !self.atEnd else { throw self.fail("unterminated attribute value") }
            self.index += 1
        }

        var text: [UInt8] = []
        var children: [XMLElement] = []
        while true {
            guard !self.atEnd else { throw self.fail("missing </\(name)>") }
            if self.peek("</") {
                self.index += 2
                let closing = try self.name()
                guard closing == name else { throw self.fail("</\(closing)> closes <\(name)>") }
                self.skipWhitespace()
                guard self.peek(">") else { throw self.fail("unterminated end tag </\(closing)") }
                self.index += 1
                return XMLElement(name: name, text: String(decoding: text, as: UTF8.self), children: children)
            } else if self.peek("<!--") {
                try self.skip(past: "-->")
            } else if self.peek("<![CDATA[") {
                self.index += 9
                let start = self.index
                try self.skip(past: "]]>")
                text.append(contentsOf: self.bytes[start..<self.index - 3])
            } else if self.peek("<?") {
                try self.skip(past: "?>")
            } else if self.peek("<") {
                children.append(try self.element(depth: depth + 1))
            } else if self.peek("&") {
                text.append(contentsOf: try self.entity())
            } else {
                text.append(self.bytes[self.index])
                self.index += 1
            }
        }
    }

    private mutating func entity() throws -> [UInt8] {
        let start = self.index
        while !self.atEnd, self.bytes[self.index] != UInt8(ascii: ";") {
            self.index += 1
            guard self.index - start < 12 else { throw self.fail("unterminated entity") }
        }
        guard !self.atEnd else { throw self.fail("unterminated entity") }
        let body = String(decoding: self.bytes[(start + 1)..<self.index], as: UTF8.self)
        self.index += 1
        switch body {
        case "amp": return Array("&".utf8)
        case "lt": return Array("<".utf8)
        case "gt": return Array(">".utf8)
        case "quot": return Array("\"".utf8)
        case "apos": return Array("'".utf8)
        default:
            var scalarValue: UInt32?
            if body.hasPrefix("#x") || body.hasPrefix("#X") {
                scalarValue = UInt32(body.dropFirst(2), radix: 16)
            } else if body.hasPrefix("#") {
                scalarValue = UInt32(body.dropFirst(1), radix: 10)
            }
            guard let value = scalarValue, let scalar = Unicode.Scalar(value) else {
                throw self.fail("unknown entity &\(body);")
            }
            return Array(String(Character(scalar)).utf8)
        }
    }
}
