public import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// Reads the certificate chain an HTTPS endpoint serves and returns when its first certificate expires.
///
/// The chain is read, not judged: an expired or untrusted chain still has dates, and on-call wants to see them
/// coming. SNI carries the host name (not for IP addresses).
public enum TLSCertificateInspector {
    /// The earliest `notAfter` in the chain `host:port` serves; gives up after `timeout`.
    public static func earliestExpiry(host: String, port: Int, timeout: Duration = .seconds(5)) async throws -> Date {
        let chain = Mutex<[NIOSSLCertificate]>([])
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let isIP = (try? SocketAddress(ipAddress: host, port: port)) != nil
        let amount = timeout.timeAmount
        let group = MultiThreadedEventLoopGroup.singleton
        let handshake = group.any().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(amount)
            .channelInitializer { channel in
                do {
                    let tls = try NIOSSLClientHandler(
                        context: context,
                        serverHostname: isIP ? nil : host,
                        customVerificationCallback: { certificates, promise in
                            chain.withLock { $0 = certificates }
                            promise.succeed(.certificateVerified)
                        }
                    )
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: handshake))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            handshake.fail(error)
            throw error
        }
        let timer = channel.eventLoop.scheduleTask(in: amount) { handshake.fail(ChannelError.connectTimeout(amount)) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        try await handshake.futureResult.get()
        let dates = chain.withLock { $0 }.map { Date(timeIntervalSince1970: TimeInterval($0.notValidAfter)) }
        guard let earliest = dates.min() else {
            throw ObjectStorageError(code: .tls, message: "\(host):\(port) served no certificate")
        }
        return earliest
    }
}
