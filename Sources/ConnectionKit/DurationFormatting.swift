/// A duration as the package's messages show it: `123 ms` below 10 s, `42 s` from there on
/// (timeouts in errors and logs, whichever client says them).
@inlinable
package func formatted(_ duration: Duration) -> String {
    let ms = duration.wholeMilliseconds
    return ms < 10_000 ? "\(ms) ms" : "\(ms / 1000) s"
}
