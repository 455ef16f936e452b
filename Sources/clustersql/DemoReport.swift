import SQLCore

/// How the demo's traffic shifted between its two phases, and what failed.
struct DemoReport {
    let nodes: [String]
    let outcome: DemoWorkload.Outcome
    /// What the second phase did to the nodes.
    let secondPhase: String

    func render() -> String {
        let firstTotal = outcome.firstPhase.values.reduce(0, +)
        let secondTotal = outcome.secondPhase.values.reduce(0, +)
        let columns = SQLColumns(["node", "phase 1: all healthy", "phase 2: \(secondPhase)"])
        let rows = nodes.map { node in
            SQLRow(
                columns: columns,
                values: [
                    .text(node), .text(share(outcome.firstPhase[node] ?? 0, of: firstTotal)),
                    .text(share(outcome.secondPhase[node] ?? 0, of: secondTotal)),
                ])
        }
        var text = "statements per node (node statements include retries and the background checks' role reads)\n"
        text += ResultPrinter(json: false).render(SQLRows(columns: columns, rows: rows))
        text += "throughput: phase 1 \(rate(firstTotal, outcome.firstSeconds))/s, phase 2 \(rate(secondTotal, outcome.secondSeconds))/s\n"
        if outcome.failures.isEmpty {
            text += "failed statements: none\n"
        } else {
            let list = outcome.failures.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            text += "failed statements: \(list)\n"
        }
        return text
    }

    private func share(_ count: Int, of total: Int) -> String {
        "\(count) (\(total > 0 ? count * 100 / total : 0)%)"
    }

    private func rate(_ count: Int, _ seconds: Double) -> Int { seconds > 0 ? Int(Double(count) / seconds) : 0 }
}
