package emulator

import "syscall"

// sysProcAttr puts the emulator in its own process group, so Stop can signal it and anything it
// started, and has the kernel kill it if this process dies without calling Stop (a test binary
// killed on timeout, say).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
