/// The one format basic-auth password hashes may have: bcrypt as htpasswd writes it.
public enum BcryptHash {
    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost, 53 characters of salt and hash.
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 60, text.hasPrefix("$2a$") || text.hasPrefix("$2b$") || text.hasPrefix("$2y$"),
            let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost),
            bytes[6] == UInt8(ascii: "$")
        else { return false }
        let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return bytes[7...].allSatisfy { alphabet.contains($0) }
    }
}
