import SQLCore
import Testing

@testable import ClusterSQL

/// A cluster connection's decisions without nodes or sockets: where each statement runs, when
/// the connection moves, what a transaction holds, and what follows a failure.
@Suite("Cluster connection state machine")
struct ClusterConnectionStateMachineTests {
    /// A connection to a node: the same connection when the ids agree.
    struct Binding: ClusterBinding, Equatable {
        let id: Int
        let nodeName: String
        func isSame(as other: Binding) -> Bool { id == other.id }
    }

    typealias Machine = ClusterConnectionStateMachine<Binding>
    static let a = Binding(id: 1, nodeName: "a")
    static let b = Binding(id: 2, nodeName: "b")
    static let c = Binding(id: 3, nodeName: "c")
    static let reset = SQLError(.connectionLost, message: "connection reset")
    static let refused = SQLError(.closed, message: "the server closed the connection before the statement")
    static let syntax = SQLError(.syntaxError, message: "syntax error")

    /// The plan with every connection working and every node serving, except as given.
    static func plan(
        _ machine: Machine, broken: Set<Int> = [], notServing: Set<Int> = []
    ) -> Machine.StatementPlan {
        machine.planStatement(isValid: { !broken.contains($0.id) }, serves: { !notServing.contains($0.id) })
    }

    static func runs(_ plan: Machine.StatementPlan) -> (Binding, Bool)? {
        if case .run(let binding, let inTransaction) = plan { return (binding, inTransaction) }
        return nil
    }

    static func failure(_ plan: Machine.StatementPlan) -> SQLError? {
        if case .fail(let error) = plan { return error }
        return nil
    }

    static func rebinds(_ plan: Machine.StatementPlan) -> Binding?? {
        if case .rebind(let stale) = plan { return .some(stale) }
        return nil
    }

    @Test("a serving node runs the statement; a node that no longer serves, or a broken connection, is left for a new one")
    func runOrRebind() {
        var machine = Machine(binding: Self.a)
        #expect(Self.runs(Self.plan(machine))! == (Self.a, false))
        #expect(Self.rebinds(Self.plan(machine, notServing: [1])) == .some(Self.a), "ejected, removed, other role, lagging")
        #expect(Self.rebinds(Self.plan(machine, broken: [1])) == .some(Self.a))
        let reboundToB = machine.rebound(to: Self.b)
        #expect(reboundToB)
        #expect(Self.runs(Self.plan(machine, notServing: [1]))! == (Self.b, false))
    }

    @Test("a transaction, begun or reported by the backend, keeps its connection while it works, even off a serving node")
    func transactionStays() {
        var machine = Machine(binding: Self.a)
        machine.began()
        #expect(Self.runs(Self.plan(machine, notServing: [1]))! == (Self.a, true))
        machine.ended()
        #expect(Self.rebinds(Self.plan(machine, notServing: [1])) == .some(Self.a))
        // BEGIN sent as SQL: the backend says a transaction is open, then idle again.
        machine.statementEnded(on: Self.a, status: .inTransaction)
        #expect(Self.runs(Self.plan(machine, notServing: [1]))! == (Self.a, true))
        machine.statementEnded(on: Self.a, status: .unknown)
        #expect(machine.holdsTransaction, "an unknown status keeps the last answer")
        machine.statementEnded(on: Self.a, status: .idle)
        #expect(!machine.holdsTransaction)
        // A status reported by a connection that is no longer the connection changes nothing.
        machine.statementEnded(on: Self.b, status: .inTransaction)
        #expect(!machine.holdsTransaction)
    }

    @Test("a transaction whose connection broke is lost: statements fail, nothing is sent, until commit or rollback ends it")
    func lostTransaction() {
        var machine = Machine(binding: Self.a)
        machine.began()
        let broken = Self.failure(Self.plan(machine, broken: [1]))
        #expect(broken?.code == .nodeChanged && broken?.node == "a")
        let droppedA = machine.dropped(Self.a)
        #expect(droppedA)
        #expect(Self.failure(Self.plan(machine))?.code == .nodeChanged)
        #expect(machine.holdsTransaction)
        machine.ended()
        #expect(Self.rebinds(Self.plan(machine)) == .some(nil), "after the rollback the next statement opens a new connection")
    }

    @Test("a transaction begun as SQL ends with its connection: the next statement opens a new one")
    func sqlTransactionEndsWithItsConnection() {
        var machine = Machine(binding: Self.a)
        machine.statementEnded(on: Self.a, status: .inTransaction)
        let droppedA = machine.dropped(Self.a)
        #expect(droppedA)
        #expect(!machine.holdsTransaction)
        #expect(Self.rebinds(Self.plan(machine)) == .some(nil))
    }

    @Test("only the current connection is dropped or moved from; a move keeps the transaction state")
    func dropAndMoveOnlyTheCurrent() {
        var machine = Machine(binding: Self.a)
        let droppedB = machine.dropped(Self.b)
        #expect(!droppedB)
        let movedFromB = machine.moved(from: Self.b, to: Self.c)
        #expect(!movedFromB)
        let movedFromA = machine.moved(from: Self.a, to: Self.c)
        #expect(movedFromA)
        #expect(machine.binding == Self.c)
        let droppedC = machine.dropped(Self.c)
        #expect(droppedC)
        let droppedCAgain = machine.dropped(Self.c)
        #expect(!droppedCAgain, "dropped once")
        #expect(machine.binding == nil)
    }

    @Test("closed: every statement fails, a new connection is refused, close hands back the connection once")
    func closed() {
        var machine = Machine(binding: Self.a)
        let closing = machine.close()
        #expect(closing == Self.a)
        let closingAgain = machine.close()
        #expect(closingAgain == nil)
        #expect(Self.failure(Self.plan(machine))?.code == .closed)
        let reboundAfterClose = machine.rebound(to: Self.b)
        #expect(!reboundAfterClose, "an open that finished after the close is closed by the shell")
        let movedAfterClose = machine.moved(from: Self.a, to: Self.b)
        #expect(!movedAfterClose)
        machine.began()
        machine.ended()
        #expect(Self.failure(Self.plan(machine))?.code == .closed)
    }

    @Test("after a failure: a statement-class error keeps the connection; a connection-class one drops it and retries only when safe")
    func afterFailure() {
        func plan(_ error: SQLError, attempt: Int = 1, inTransaction: Bool = false, idempotent: Bool = false) -> Machine.FailurePlan {
            Machine.planAfterFailure(error, attempt: attempt, maxAttempts: 3, inTransaction: inTransaction, idempotent: idempotent)
        }
        #expect(plan(Self.syntax, idempotent: true) == .surface)
        #expect(plan(Self.refused) == .dropAndRetryElsewhere, "never reached the server")
        #expect(plan(Self.refused, attempt: 3) == .dropAndSurface, "at most maxAttempts nodes")
        #expect(plan(Self.reset) == .dropAndSurface, "may have run: never sent again")
        #expect(plan(Self.reset, idempotent: true) == .dropAndRetryElsewhere)
        #expect(plan(Self.reset, attempt: 2, idempotent: true) == .dropAndSurface, "an idempotent statement retries once")
        #expect(plan(Self.refused, inTransaction: true) == .dropAndSurface, "a transaction is never retried")
        #expect(plan(SQLError(.timeout, message: "slow"), idempotent: true) == .dropAndSurface, "slow on every node")
        #expect(plan(SQLError(.cancelled, message: "cancelled"), idempotent: true) == .surface, "the caller cancelled: never retried")
    }
}
