/// A caller's name for the requests its task sends, handed back to the caller in ``S3Backend``'s
/// `onResponseHead` hook, so a layer above (the canary's operation names) can label what the client measures
/// without the client knowing those names. Read only by ``S3Backend``, which is why it lives here.
public enum RequestLabel {
    /// The label of requests sent by the current task; `nil` outside any labelled work (the sweeper).
    @TaskLocal public static var current: String?
}
