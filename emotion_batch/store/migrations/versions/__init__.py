"""Revisions, oldest first: 0001 baseline (the schema before migrations), 0002 analyst views and indexes,
0003 ad_share_estimates, 0004 viewer videos (videos, video_frames, ad_second_trace)."""
