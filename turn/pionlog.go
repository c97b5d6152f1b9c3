package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs into slog. pion logs per-datagram events at
// Info ("No Permission or Channel exists"), so Info and below become Debug.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("scope", "pion/"+scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) emit(level slog.Level, msg string) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, msg)
	}
}

func (p pionLogger) Trace(msg string)                  { p.emit(slog.LevelDebug-4, msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.tracef(slog.LevelDebug-4, format, args) }
func (p pionLogger) Debug(msg string)                  { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.tracef(slog.LevelDebug, format, args) }
func (p pionLogger) Info(msg string)                   { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.tracef(slog.LevelDebug, format, args) }
func (p pionLogger) Warn(msg string)                   { p.emit(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.tracef(slog.LevelWarn, format, args) }
func (p pionLogger) Error(msg string)                  { p.emit(slog.LevelError, msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.tracef(slog.LevelError, format, args) }

func (p pionLogger) tracef(level slog.Level, format string, args []any) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}
