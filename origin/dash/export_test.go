package dash

// ParseFrameRate is parseFrameRate, for the loopback tests.
var ParseFrameRate = parseFrameRate
