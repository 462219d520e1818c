import AgentSupport
import Foundation
import MarketData
import Synchronization

/// Numbered sequences of doubles that grow a minute at a time (each streamed grid run's equity, each feature set's
/// ambiguous fractions) and are read back whole once, one at a time, at the end. With a directory, every sequence
/// keeps at most one block in memory and writes full blocks to one file there, opened and unlinked at once (nothing
/// is left behind, whatever ends the process); without, the blocks stay in memory. Exact: the values read back are
/// the values appended, in order.
///
/// Threads: each sequence is appended to by one thread at a time (a worker owns it for the chunk); different
/// sequences may be appended to at once.
final class DoubleSequences: @unchecked Sendable {
    // Safety: `pending` and `blocks` of sequence i are touched only by the thread appending to i (or, at the end,
    // reading it); the file's end and the first error are behind `shared`; pwrite at distinct offsets is safe.
    private struct Block {
        var offset: Int64
        var count: Int
    }
    private let pending: Shared<[Double]>
    private let blocks: Shared<[Block]>
    private let blockSize: Int
    private let fd: Int32
    private let path: String
    private let shared = Mutex<(end: Int64, error: String?)>((0, nil))

    /// `count` sequences; `directory` nil keeps them in memory.
    init(count: Int, directory: String?, name: String, blockSize: Int = 8_192) throws {
        pending = Shared(Array(repeating: [], count: count))
        blocks = Shared(Array(repeating: [], count: count))
        self.blockSize = max(1, blockSize)
        guard let directory else {
            fd = -1
            path = ""
            return
        }
        path = "\(directory)/.\(name).part-\(ProcessInfo.processInfo.processIdentifier)"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CommandError(description: "\(path): cannot be written: \(String(cString: strerror(errno)))")
        }
        unlink(path)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Appends to sequence `i`; a full block goes to the file (a failed write is reported by `check`).
    func append(_ values: some Collection<Double>, to i: Int) {
        pending.update(i) { $0 += values }
        guard fd >= 0, pending.value(i).count >= blockSize else { return }
        let block = pending.value(i)
        pending.update(i) { $0 = [] }
        let bytes = Int64(block.count * MemoryLayout<Double>.size)
        let offset = shared.withLock { s -> Int64 in
            defer { s.end += bytes }
            return s.end
        }
        if let why = block.withUnsafeBytes({ writeFully(fd, $0, at: offset) }) {
            shared.withLock { s in if s.error == nil { s.error = "\(path): cannot be written: \(why)" } }
        }
        blocks.update(i) { $0.append(Block(offset: offset, count: block.count)) }
    }

    /// Throws the first write that failed (a full disk), if any.
    func check() throws {
        if let error = shared.withLock({ $0.error }) { throw CommandError(description: error) }
    }

    /// Sequence `i`, whole, in order.
    func values(_ i: Int) throws -> [Double] {
        try check()
        var out: [Double] = []
        out.reserveCapacity(blocks.value(i).reduce(0) { $0 + $1.count } + pending.value(i).count)
        for b in blocks.value(i) {
            var block = [Double](repeating: 0, count: b.count)
            if let why = block.withUnsafeMutableBytes({ readFully(fd, $0, at: b.offset) }) {
                throw CommandError(description: "\(path): cannot be read back: \(why)")
            }
            out += block
        }
        return out + pending.value(i)
    }
}
