/// The replies of a pipelined batch, collected on the event loop and handed
/// over all at once, in request order, when the last one arrives.
///
/// Event-loop confined: ``complete(_:_:)`` is called on the loop of the
/// connection that wrote the batch, never concurrently.
@usableFromInline
package final class BatchReplies<Reply: Sendable, Failure: Error> {
    @usableFromInline var results: [Result<Reply, Failure>?]
    @usableFromInline var remaining: Int
    @usableFromInline let continuation: UnsafeContinuation<[Result<Reply, Failure>], Never>

    /// A collector for `count` replies (at least one) that resumes `continuation` with all of them.
    @inlinable
    package init(count: Int, continuation: UnsafeContinuation<[Result<Reply, Failure>], Never>) {
        precondition(count > 0, "a batch has at least one request")
        results = Array(repeating: nil, count: count)
        remaining = count
        self.continuation = continuation
    }

    /// Records the reply of request `index`; the last one resumes the waiting task.
    @inlinable
    package func complete(_ index: Int, _ result: Result<Reply, Failure>) {
        results[index] = result
        remaining -= 1
        if remaining == 0 { continuation.resume(returning: results.map { $0! }) }
    }
}

/// Who waits for a reply: one task, or one place in a pipelined batch.
@usableFromInline
package enum ReplyTarget<Reply: Sendable, Failure: Error> {
    /// A task waiting for this reply alone.
    case caller(UnsafeContinuation<Result<Reply, Failure>, Never>)
    /// Request `index` of a batch.
    case batch(BatchReplies<Reply, Failure>, index: Int)
    /// Nobody: the caller gave up (its task was cancelled) and was answered already; the reply,
    /// still due in its place in the stream, is read and dropped.
    case discard

    /// Hands `result` to whoever waits for it.
    @inlinable
    package func complete(_ result: Result<Reply, Failure>) {
        switch self {
        case .caller(let continuation): continuation.resume(returning: result)
        case .batch(let replies, let index): replies.complete(index, result)
        case .discard: break
        }
    }
}
