"""
Tests for L{twistsock.echo._settings}: one frozen value holds every server setting, checked
once, whether it comes from the command line or from Python.
"""

from __future__ import annotations

import dataclasses
import pickle

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twistsock import EchoSettings, InvalidSetting, OKEchoFactory


class EchoSettingsTests(SynchronousTestCase):
    """
    L{EchoSettings} normalises text, rejects values out of range and cannot be changed.
    """

    def test_defaults(self) -> None:
        """
        Every limit is on by default.
        """
        settings = EchoSettings()
        self.assertEqual(settings.welcome, b"Welcome to the server. Type something and hit enter")
        self.assertEqual((settings.prefix, settings.mode), (b"OK...", "line"))
        self.assertEqual(
            (settings.max_line_length, settings.idle_timeout, settings.line_timeout),
            (65536, 300.0, 60.0),
        )
        self.assertEqual((settings.max_connections, settings.max_per_ip), (10000, 0))
        self.assertEqual((settings.close_timeout, settings.direct_write), (10.0, True))

    def test_text_is_encoded(self) -> None:
        """
        Text for the welcome and the prefix is stored as UTF-8; the welcome line as sent
        ends with a newline; no welcome sends nothing.
        """
        settings = EchoSettings(welcome="héllo", prefix="→")  # type: ignore[arg-type]
        self.assertEqual(settings.welcome, "héllo".encode())
        self.assertEqual(settings.welcome_line, "héllo\n".encode())
        self.assertEqual(settings.prefix, "→".encode())
        self.assertIsNone(EchoSettings(welcome=None).welcome_line)

    def test_timeouts_are_floats(self) -> None:
        """
        Whole-number timeouts are stored as floats, so equal settings compare equal.
        """
        self.assertEqual(EchoSettings(idle_timeout=5), EchoSettings(idle_timeout=5.0))
        self.assertIsInstance(EchoSettings(idle_timeout=5).idle_timeout, float)

    def test_invalid(self) -> None:
        """
        A value out of range raises L{InvalidSetting}, naming the setting, its
        command-line option and what it must be.
        """
        cases = [
            ({"mode": "lines"}, "mode", "must be one of line, chunk, once"),
            ({"max_line_length": 0}, "max_line_length", "must be at least 1"),
            ({"max_connections": 0}, "max_connections", "must be at least 1"),
            ({"max_per_ip": -1}, "max_per_ip", "must be at least 0"),
            ({"max_per_ip": 1.5}, "max_per_ip", "must be a whole number"),
            ({"max_connections": True}, "max_connections", "must be a whole number"),
            ({"idle_timeout": -1}, "idle_timeout", "must be at least 0"),
            ({"line_timeout": float("nan")}, "line_timeout", "must be a finite number"),
            ({"close_timeout": float("inf")}, "close_timeout", "must be a finite number"),
            ({"close_timeout": "5"}, "close_timeout", "must be a number"),
            ({"prefix": 5}, "prefix", "must be bytes or str"),
        ]
        for changes, name, requirement in cases:
            error = self.assertRaises(InvalidSetting, EchoSettings, **changes)
            self.assertEqual((error.name, error.requirement), (name, requirement))
            self.assertEqual(error.option, "--" + name.replace("_", "-"))
            self.assertEqual(str(error), f"{name} {requirement}, got {error.value!r}")
            self.assertIsInstance(error, ValueError)

    def test_frozen(self) -> None:
        """
        Settings cannot be changed once made; L{dataclasses.replace} makes new ones,
        checked again.
        """
        settings = EchoSettings()
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, settings, "mode", "once")
        self.assertEqual(dataclasses.replace(settings, mode="once").mode, "once")
        self.assertRaises(InvalidSetting, dataclasses.replace, settings, max_line_length=0)

    def test_picklable(self) -> None:
        """
        Settings survive pickling, so that they can be handed to another process.
        """
        settings = EchoSettings(prefix=b">", max_per_ip=3)
        self.assertEqual(pickle.loads(pickle.dumps(settings)), settings)

    def test_sweep_interval(self) -> None:
        """
        Timeouts are checked once a second, or four times per timeout when shorter.
        """
        self.assertEqual(EchoSettings().sweep_interval, 1.0)
        self.assertEqual(EchoSettings(idle_timeout=0.2).sweep_interval, 0.05)
        self.assertEqual(EchoSettings(idle_timeout=0, line_timeout=2).sweep_interval, 0.5)
        self.assertEqual(EchoSettings(idle_timeout=0, line_timeout=0).sweep_interval, 1.0)


class FactorySettingsTests(SynchronousTestCase):
    """
    L{OKEchoFactory} takes settings, keyword arguments, or both.
    """

    def test_keywords(self) -> None:
        """
        Keyword arguments build the settings.
        """
        factory = OKEchoFactory(max_connections=5, prefix="> ", reactor=Clock())
        self.assertEqual(factory.settings, EchoSettings(max_connections=5, prefix=b"> "))

    def test_settings_and_keywords(self) -> None:
        """
        Keywords override the settings given; the settings object itself is unchanged.
        """
        base = EchoSettings(max_connections=5)
        factory = OKEchoFactory(base, mode="once", reactor=Clock())
        self.assertEqual(factory.settings, EchoSettings(max_connections=5, mode="once"))
        self.assertEqual(base.mode, "line")
        self.assertIs(OKEchoFactory(base, reactor=Clock()).settings, base)

    def test_invalid_keyword(self) -> None:
        """
        A bad value is an L{InvalidSetting}; an unknown keyword a L{TypeError}.
        """
        self.assertRaises(InvalidSetting, OKEchoFactory, max_line_length=0, reactor=Clock())
        self.assertRaises(TypeError, OKEchoFactory, max_lines=3, reactor=Clock())
        self.assertRaises(TypeError, OKEchoFactory, EchoSettings(), max_lines=3, reactor=Clock())


class ProxySettingsTests(SynchronousTestCase):
    """
    The PROXY protocol settings: off by default, trusting loopback, checked once.
    """

    def test_defaults(self) -> None:
        """
        Off; headers would be accepted from loopback only, within 5 seconds.
        """
        settings = EchoSettings()
        self.assertEqual(
            (settings.proxy_protocol, settings.proxy_from, settings.proxy_header_timeout),
            (False, ("127.0.0.0/8", "::1/128"), 5.0),
        )

    def test_networks_normalised(self) -> None:
        """
        A bare address is that address alone, host bits are dropped, a single string is
        one network.
        """
        self.assertEqual(
            EchoSettings(proxy_from=("10.1.2.3/8", "192.0.2.1", "2001:DB8::/32")).proxy_from,
            ("10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"),
        )
        self.assertEqual(EchoSettings(proxy_from="::1").proxy_from, ("::1/128",))  # type: ignore[arg-type]

    def test_bad_networks(self) -> None:
        """
        A bad network, an empty list or a non-string is refused, naming C{--proxy-from}.
        """
        for value in [("10.0.0.0/33",), ("nowhere",), (), (10,), None]:
            with self.assertRaises(InvalidSetting, msg=repr(value)) as caught:
                EchoSettings(proxy_from=value)  # type: ignore[arg-type]
            self.assertEqual(caught.exception.option, "--proxy-from")

    def test_bad_header_timeout(self) -> None:
        """
        The header timeout is a positive finite number.
        """
        for value in [0, -1, float("inf"), float("nan"), "5", True]:
            with self.assertRaises(InvalidSetting, msg=repr(value)) as caught:
                EchoSettings(proxy_header_timeout=value)  # type: ignore[arg-type]
            self.assertEqual(caught.exception.option, "--proxy-header-timeout")

    def test_sweep_covers_header_timeout(self) -> None:
        """
        With the PROXY protocol the sweep runs often enough for a short header timeout.
        """
        settings = EchoSettings(proxy_protocol=True, proxy_header_timeout=0.4)
        self.assertEqual(settings.sweep_interval, 0.1)
        self.assertEqual(EchoSettings(proxy_header_timeout=0.4).sweep_interval, 1.0)
