package import NIOSSL
public import ObjectStorage

/// One certificate chain and its key, read and parsed from PEM files.
public struct TLSMaterial: Sendable {
    /// The certificates of the chain, in file order.
    package var chain: [NIOSSLCertificate]
    /// The private key of the chain's certificate.
    package var key: NIOSSLPrivateKey

    /// Reads both files; throws one problem per file that cannot be read or parsed.
    public init(_ files: CanaryConfiguration.Server.TLSFiles) throws(ConfigurationError) {
        var problems: [ConfigurationProblem] = []
        let chain = try? NIOSSLCertificate.fromPEMFile(files.certificateFile)
        if chain?.isEmpty ?? true {
            problems.append(
                .init(
                    field: "server.tls.cert_file",
                    message: """
                        cannot read a PEM certificate from \(files.certificateFile); \
                        check the path, permissions and format
                        """
                )
            )
        }
        let key = try? NIOSSLPrivateKey(file: files.keyFile, format: .pem)
        if key == nil {
            problems.append(
                .init(
                    field: "server.tls.key_file",
                    message: """
                        cannot read a PEM private key from \(files.keyFile); \
                        check the path, permissions and that it is not encrypted
                        """
                )
            )
        }
        guard let chain, let key, problems.isEmpty else { throw ConfigurationError(problems: problems) }
        self.chain = chain
        self.key = key
    }
}
