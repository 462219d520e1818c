import Testing

/// What a suite needs to run; `make test-fast` runs the unit tests only (`swift test --filter tag:unit`).
extension Tag {
    /// Pure logic: no process, socket or file beyond a temporary one (`make test-fast` runs these).
    @Tag static var unit: Self
}
