package exact

// Hooks for the external tests (package exact_test).
var CPUSecondsForTest = cpuSeconds
