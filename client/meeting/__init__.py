"""The meeting pipeline: video source, tracking, adaptive classification, temporal smoothing,
analytics (P_t, E_i(t), S_i), reports, plots and the annotated video.
"""
