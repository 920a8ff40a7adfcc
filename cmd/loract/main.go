// Command loract runs the LoRAct demo, benchmarks against peers, and plots.
//
// Usage:
//
//	loract demo    fine-tune a small ViT on MNIST with and without compressed activations
//	loract bench   compare loract with NumPy, scikit-learn and PyTorch on this machine
//	loract plot    write the figures of docs/ to docs/img/
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "demo":
		fmt.Println("loract demo: fine-tunes a small ViT on MNIST digits 5–9 with LoRA, once saving")
		fmt.Println("activations as they are and once compressed by loract, and compares accuracy,")
		fmt.Println("activation memory and time. (The demo lands with the activation issue.)")
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "loract: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: loract <command> [flags]

commands:
  demo    fine-tune a small ViT on MNIST with and without compressed activations
  bench   compare loract with NumPy, scikit-learn and PyTorch on this machine
  plot    write the figures of docs/ to docs/img/`)
}
