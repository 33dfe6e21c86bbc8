import Foundation
import TestSupport

/// One S3 server of the compatibility matrix: where it listens (plain HTTP on loopback), its keys, its bucket and
/// the version it reports.
struct MatrixServer: Sendable {
    var name: String
    var version: String
    var port: Int
    var bucket: String
    var accessKey: String
    var secretKey: String

    var endpoint: String { "http://127.0.0.1:\(self.port)" }
}

/// The servers `scripts/servers.sh` starts (JuiceFS gateway, rclone `serve s3`, OpenStack Swift with s3api,
/// LocalStack), read from the environment it writes. Ceph RGW and moto come from their own helpers.
///
/// A missing variable fails the test with its name: the matrix never passes by leaving a server out.
enum MatrixEnvironment {
    static func servers() throws -> [MatrixServer] {
        let env = ProcessInfo.processInfo.environment
        func value(_ name: String) throws -> String {
            guard let value = env[name], !value.isEmpty else {
                throw HarnessError(
                    "\(name) is not set: run the integration tests through scripts/test.sh, which starts the "
                        + "matrix's servers with scripts/servers.sh (or source the env file it writes)")
            }
            return value
        }
        let names = try value("S3CANARY_MATRIX_SERVERS").split(separator: " ").map(String.init)
        return try names.map { name in
            let variable = "S3CANARY_\(name.uppercased())_"
            let endpoint = try value(variable + "ENDPOINT")
            guard let port = Int(endpoint.split(separator: ":").last ?? "") else {
                throw HarnessError("\(variable)ENDPOINT=\(endpoint) has no port")
            }
            return MatrixServer(
                name: name, version: try value(variable + "VERSION"), port: port,
                bucket: try value(variable + "BUCKET"),
                accessKey: try value(variable + "ACCESS_KEY"), secretKey: try value(variable + "SECRET_KEY"))
        }
    }

    /// Ceph RGW of the suite, as a matrix server.
    static func rgw() throws -> MatrixServer {
        let rgw = try RGWEnvironment.load()
        let version = try Harness.run("/usr/bin/env", ["radosgw", "--version"]).stdout
        // "ceph version 16.2.15 (hash) pacific (stable)" → "Ceph RGW 16.2": the suite installs Debian's radosgw
        // unpinned, so its point release stays out of the generated docs.
        let full = version.split(separator: " ").dropFirst(2).first.map(String.init) ?? "?"
        let number = full.split(separator: ".").prefix(2).joined(separator: ".")
        return MatrixServer(
            name: "rgw", version: "Ceph RGW \(number)", port: rgw.port, bucket: RGWEnvironment.miscBucket,
            accessKey: rgw.accessKey, secretKey: rgw.secretKey)
    }

    /// moto's server, started by the test, with a bucket made for the matrix.
    static func moto(_ moto: MotoServer) throws -> MatrixServer {
        let made = try Harness.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import boto3, moto; boto3.client('s3', endpoint_url='\(moto.base)', aws_access_key_id='testing', "
                    + "aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket='matrix'); "
                    + "print(moto.__version__)",
            ])
        guard made.status == 0 else { throw HarnessError("creating moto's bucket: \(made.stderr)") }
        return MatrixServer(
            name: "moto", version: "moto \(made.stdout.trimmingCharacters(in: .whitespacesAndNewlines))",
            port: moto.port, bucket: "matrix", accessKey: "testing", secretKey: "testing")
    }
}
