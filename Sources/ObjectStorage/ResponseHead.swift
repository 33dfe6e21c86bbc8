/// What ``S3Backend`` reports for each complete answer, for latency breakdowns: time to first byte.
public struct ResponseHead: Sendable {
    /// The S3 operation, such as `PutObject`.
    public var operation: String
    /// The sending task's ``RequestLabel``; `nil` outside labelled work (the sweeper).
    public var label: String?
    /// From sending the request to receiving the response head.
    public var elapsed: Duration
    /// `x-amz-request-id` of the response, if the server sent one.
    public var requestID: String?
}
