package main

import "fmt"

func init() {
	commands["demo"] = command{
		summary: "fine-tune a small ViT on MNIST with and without compressed activations",
		run: func(args []string) error {
			fmt.Println("loract demo: fine-tunes a small ViT on MNIST digits 5–9 with LoRA, once saving")
			fmt.Println("activations as they are and once compressed by loract, and compares accuracy,")
			fmt.Println("activation memory and time. (The demo lands with the activation issue.)")
			return nil
		},
	}
}
