/// The ids seen recently (executions, by `execId`), bounded: past `capacity` the older half is forgotten. A fill may
/// be reported twice (stream and REST, or the stream itself); the second report is recognised here.
public struct RecentIds: Sendable {
    private var ids: Set<String> = []
    private var order: [String] = []
    public let capacity: Int

    public init(capacity: Int = 50_000) { self.capacity = capacity }

    /// Remembers `id`; false when it was seen already.
    public mutating func insert(_ id: String) -> Bool {
        guard ids.insert(id).inserted else { return false }
        order.append(id)
        if order.count > capacity {
            let drop = capacity / 2
            for old in order.prefix(drop) { ids.remove(old) }
            order.removeFirst(drop)
        }
        return true
    }

    public func contains(_ id: String) -> Bool { ids.contains(id) }
}
