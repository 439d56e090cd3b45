// The layout of an instance and of a capture in the upgrade state (state.h). They
// are the bulk of a state (thousands of them), so each is a JSON array in this order
// rather than an object: measured at 1,000 instances, about four times faster to build,
// write and parse. Changing the order or the set is a new kStateVersion.
#pragma once

namespace fdsup::state_format {

enum InstanceField {
    kId, kIndex, kRetiring, kReplacement, kState, kReady, kPid, kPidfd, kStartedAt, kStopEscalated,
    kSocketsUsed, kTimerActive, kTimerDeadline, kKillReason, kStatusText, kReloading, kStoppingNotified,
    kWatchdogTimeoutMs, kWatchdogActive, kWatchdogDeadline, kLastWatchdogPing, kRestarts,
    kLastExit,  // null, or [signaled, code, signal, oom_kill, oom_limit]
    kLastError, kBackoffMs, kRecentStarts,
    kCgroup,          // "" or the name of its cgroup below the supervisor's
    kCgroupEventsFd,  // -1 or its cgroup.events, registered in the set of cgroup events
    kExitPending,     // null, or the main process's exit (as kLastExit) while its cgroup empties
    kHealth,          // [failures, last (null or [passed, detail, latency_us, at_ns]), accepting, replaced, replaced_at_ns]
    kUsage,           // [recycle_at_ns (-1: none), memory_over_since_ns (-1), retry_after_ns, recycled]
    kDraining,        // stop_delay: out of readiness, stop_signal at kTimerDeadline
    kInstanceFields  // the count
};

// A captured output pipe, one per instance and stream that is captured (log, rotate:,
// journal). kCaptureTarget is as written in the config ("rotate:/var/log/web.log").
enum CaptureField {
    kCaptureKey, kCaptureFd, kCaptureWorker, kCaptureIndex, kCaptureStderr, kCapturePartial,
    kCapturePid, kCaptureTarget,
    kCaptureFields
};

// A "rotate:" file fdsupd has open (output/log_file.h), with its worker's log_*
// options: max_size null for "infinity", timestamps "utc" | "local" | "none".
enum LogFileField {
    kLogFilePath, kLogFileFd, kLogFileWorker, kLogFileMaxSize, kLogFileKeep, kLogFileCompress, kLogFileTimestamps,
    kLogFileFields
};

}  // namespace fdsup::state_format
