import SQLCore
import Testing

/// Expects `body` to throw an ``SQLError`` with `code`; returns it. Records an
/// issue at the caller when nothing or something else is thrown.
@discardableResult
public func expectSQLError<T>(
    _ code: SQLError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> SQLError? {
    await expectSQLError(oneOf: [code], sourceLocation: sourceLocation, body)
}

/// Expects `body` to throw an ``SQLError`` with one of `codes`; returns it.
@discardableResult
public func expectSQLError<T>(
    oneOf codes: [SQLError.Code], sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> SQLError? {
    let expected = codes.count == 1 ? "\(codes[0])" : "one of \(codes)"
    do {
        _ = try await body()
        Issue.record("expected \(expected), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SQLError {
        #expect(codes.contains(error.code), "expected \(expected), got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected SQLError \(expected), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
