"""`emofl audit --empirical`: a one-run empirical audit of DP-SGD with canary gradients
(Steinke, Nasr & Jagielski 2023), a check that detects broken DP, not a proof that the claimed
ε is tight."""
