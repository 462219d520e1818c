import Dispatch

/// A task executor with a thread of its own (a serial dispatch queue), so that a stream keeps running when the shared
/// cooperative pool is busy or blocked by other work in the process (SE-0417 task executor preference):
/// `Task(executorPreference: DedicatedExecutor(label: "stream")) { await stream.run(...) }`. Jobs run one at a time,
/// in order.
public final class DedicatedExecutor: TaskExecutor, Sendable {
    // The queue serialises every job; nothing else is mutable.
    private let queue: DispatchQueue

    public init(label: String) { queue = DispatchQueue(label: label, qos: .userInitiated) }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        queue.async { unowned.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
