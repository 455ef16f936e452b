/// Durations written in DSNs: a Go duration (`1.5s`, `500ms`, `2m`) or a plain number of seconds.
package enum DurationText {
    /// The duration `text` names, or `nil` when it is not a positive duration below 290 years
    /// (Go's limit too: at most `Int64.max` nanoseconds).
    package static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Double(text)
        var scale = 1.0
        for (suffix, unitScale) in units where text.hasSuffix(suffix) {
            number = Double(text.dropLast(suffix.count))
            scale = unitScale
            break
        }
        let nanoseconds = (number ?? .nan) * scale * 1e9
        guard nanoseconds > 0, nanoseconds.isFinite, nanoseconds < 9.2e18 else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }
}
