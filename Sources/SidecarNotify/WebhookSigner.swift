import Crypto
import Foundation
import ObjectStorage

/// Signs a webhook body when the webhook has a secret.
///
/// Two schemes, so receivers can use either: `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>`
/// (keyed with the secret's bytes as written), and Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, where a `whsec_<base64>` secret is
/// base64-decoded into the key, as that specification says).
struct WebhookSigner: Sendable {
    let secret: String

    init(secret: String) {
        self.secret = secret
    }

    /// The Standard Webhooks key: the decoded part after `whsec_`, else the secret's bytes.
    var standardKey: SymmetricKey {
        if self.secret.hasPrefix("whsec_"), let decoded = Data(base64Encoded: String(self.secret.dropFirst(6))) {
            return SymmetricKey(data: decoded)
        }
        return SymmetricKey(data: Data(self.secret.utf8))
    }

    func headers(body: Data, id: String, timestamp: Date) -> [(String, String)] {
        let seconds = String(Int64(timestamp.timeIntervalSince1970))
        let hmac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(self.secret.utf8)))
        var signed = Data("\(id).\(seconds).".utf8)
        signed.append(body)
        let standard = HMAC<SHA256>.authenticationCode(for: signed, using: self.standardKey)
        return [
            ("X-Webhook-Signature", "sha256=" + hmac.map { String(format: "%02x", $0) }.joined()),
            ("webhook-id", id),
            ("webhook-timestamp", seconds),
            ("webhook-signature", "v1," + Data(standard).base64EncodedString()),
        ]
    }
}
