package cpu

// Hooks for the external tests of the thin QR in cholqr_test.go, which
// import internal/testmat (and testmat imports lowrank).
var (
	CholQRForTest        = cholQR
	HouseholderQRForTest = householderQR
)
