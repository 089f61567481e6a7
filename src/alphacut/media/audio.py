"""Audio carried from the input clip into the output, interleaved as the video is written.

The audio is read through a second handle on the input (its own demuxer), a little ahead of
the video frames being written, so the muxer interleaves the two with only a few packets
buffered: memory stays flat however long the clip. Packets are copied when the output
container takes the codec (AAC into MP4/MOV, Opus/Vorbis into WebM); anything else is
re-encoded: Opus for WebM, AAC for MP4/MOV.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

#: codecs each output container takes as they are
COPYABLE = {
    "webm": {"opus", "vorbis"},
    "mkv": {"opus", "vorbis", "aac", "mp3", "ac3", "eac3", "flac"},
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"},
}
#: the encoder for audio that cannot be copied
REENCODE = {"webm": "libopus", "mkv": "libopus", "mp4": "aac", "mov": "aac"}
#: how far ahead of the last written video frame audio is muxed (seconds)
LEAD = 0.5


class AudioCarrier:
    """Copies or re-encodes the first audio stream of ``src`` into ``output``.

    ``start`` is the input time (seconds) of the first video frame: audio keeps its place
    relative to it. Call ``advance(t)`` after each video frame at output time ``t`` and
    ``finish()`` before closing the output.
    """

    def __init__(self, src: str | Path, output: Any, fmt: str, *, start: float = 0.0) -> None:
        import av

        self._av = av
        self.input = av.open(str(src), "r")
        self.in_stream = self.input.streams.audio[0]
        self.start = start
        codec = self.in_stream.codec_context.name
        self.copy = codec in COPYABLE.get(fmt, set())
        self.codec = codec if self.copy else REENCODE[fmt]
        if self.copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        else:
            cc = self.in_stream.codec_context
            rate = 48000 if self.codec == "libopus" else int(cc.sample_rate or 48000)
            layout = cc.layout.name if cc.layout and cc.layout.nb_channels <= 2 else "stereo"
            self.out_stream = output.add_stream(self.codec, rate=rate, layout=layout)
            fmt_name = "s16" if self.codec == "libopus" else "fltp"
            self.resampler = av.AudioResampler(format=fmt_name, layout=layout, rate=rate)
            self.rate = rate
            self.samples = 0
            self.first: float | None = None
        self.output = output
        self._packets = self.input.demux(self.in_stream)
        self._done = False
        self.written = 0

    def advance(self, until: float) -> None:
        """Mux audio up to output time ``until`` + ``LEAD``."""
        while not self._done:
            packet = next(self._packets, None)
            if packet is None:
                self._done = True
                if not self.copy:
                    self._encode_frames(self._decode(None))
                    self._mux(self.out_stream.encode(None))
                return
            if packet.pts is None and packet.size:
                continue
            t = float(packet.pts * packet.time_base) - self.start if packet.pts is not None else until
            if self.copy:
                self._copy(packet, t)
            else:
                self._encode_frames(self._decode(packet))
            if t > until + LEAD:
                return

    def finish(self) -> None:
        self.advance(float("inf"))
        self.input.close()

    def close(self) -> None:
        try:
            self.input.close()
        except Exception:  # noqa: BLE001 - closing after a failure
            pass

    def _copy(self, packet: Any, t: float) -> None:
        if not packet.size or t < 0:
            return  # before the first video frame (or the demuxer's empty flush packet)
        offset = round(self.start / packet.time_base)
        packet.pts -= offset
        if packet.dts is not None:
            packet.dts -= offset
        packet.stream = self.out_stream
        self.output.mux(packet)
        self.written += 1

    def _decode(self, packet: Any) -> list[Any]:
        try:
            return list(self.in_stream.codec_context.decode(packet))
        except self._av.error.EOFError:
            return []  # already drained
        except self._av.error.InvalidDataError:
            return []  # a damaged audio packet is dropped; the video is what is cut out

    def _encode_frames(self, frames: list[Any]) -> None:
        for frame in frames:
            if self.first is None and frame.time is not None:
                self.first = frame.time - self.start
                if self.first < 0:
                    self.first = 0.0
                self.samples = round(self.first * self.rate)
            frame.pts = None
            for out in self.resampler.resample(frame):
                out.pts = self.samples
                out.time_base = Fraction(1, self.rate)
                self.samples += out.samples
                self._mux(self.out_stream.encode(out))
        if not frames and self._done:
            for out in self.resampler.resample(None):
                out.pts = self.samples
                out.time_base = Fraction(1, self.rate)
                self.samples += out.samples
                self._mux(self.out_stream.encode(out))

    def _mux(self, packets: list[Any]) -> None:
        for p in packets:
            self.output.mux(p)
            self.written += 1
