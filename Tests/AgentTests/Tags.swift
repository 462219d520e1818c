import Testing

/// What a suite needs to run; `make test-fast` runs the unit tests only (`swift test --filter tag:unit`).
extension Tag {
    /// Pure logic: no process, socket or file beyond a temporary one (`make test-fast` runs these).
    @Tag static var unit: Self
    /// Real clients, servers or the engine loop against the simulator, in this process, on loopback.
    @Tag static var integration: Self
    /// The executables as processes (`auction-agent`, `atctl`), a headless browser or systemd.
    @Tag static var e2e: Self
}
