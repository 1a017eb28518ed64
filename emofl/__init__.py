"""emofl: privacy-preserving federated facial emotion recognition for video conferencing."""
