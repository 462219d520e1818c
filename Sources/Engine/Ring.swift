/// A fixed-capacity FIFO ring buffer.
public struct Ring<Element>: Sendable where Element: Sendable {
    private var storage: [Element?]
    private var head = 0
    public private(set) var count = 0

    public init(capacity: Int) {
        precondition(capacity >= 1)
        storage = Array(repeating: nil, count: capacity)
    }

    public var capacity: Int { storage.count }

    /// Appends `element`; when full, the oldest element leaves and is returned.
    @discardableResult
    public mutating func push(_ element: Element) -> Element? {
        if count == storage.count {
            let evicted = storage[head]
            storage[head] = element
            head = (head + 1) % storage.count
            return evicted
        }
        storage[(head + count) % storage.count] = element
        count += 1
        return nil
    }

    /// Removes and returns the oldest element.
    public mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let e = storage[head]
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        return e
    }

    /// The element at `i`, 0 the oldest.
    public subscript(i: Int) -> Element {
        get {
            precondition(i >= 0 && i < count)
            return storage[(head + i) % storage.count]!
        }
        set {
            precondition(i >= 0 && i < count)
            storage[(head + i) % storage.count] = newValue
        }
    }

    /// The elements, oldest first.
    public var elements: [Element] {
        (0..<count).map { storage[(head + $0) % storage.count]! }
    }
}
