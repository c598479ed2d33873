/*
 * json.c
 *	  Just enough JSON for the worker: a validator that accepts what jsonb
 *	  accepts (so a result or progress line is never refused by the server
 *	  for its syntax), string escaping for the labels we build, and UTF-8
 *	  clean-up of the handler output we quote in error messages.
 */
#include "tinytemp_worker.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Nesting deeper than this is refused; jsonb's own limit is the stack depth. */
#define JSON_MAX_DEPTH 512

typedef struct JsonParser
{
	const unsigned char *p;
	const unsigned char *end;
	int			depth;
} JsonParser;

static bool parse_value(JsonParser *jp);

/*
 * Length of the valid UTF-8 sequence at s (at most `avail` bytes), or 0
 * when it is not valid: overlong forms, surrogates and code points past
 * U+10FFFF are invalid, as PostgreSQL's encoding check has it.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t		n;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		cp = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		cp = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		cp = c & 0x07;
	}
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		(cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* Skip JSON whitespace. */
static void
skip_ws(JsonParser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
		jp->p++;
}

/* Read four hex digits of a \u escape. */
static bool
parse_hex4(JsonParser *jp, unsigned int *out)
{
	unsigned int v = 0;

	if (jp->end - jp->p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		unsigned char c = *jp->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned int) (c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned int) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned int) (c - 'A' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

/* A string, the opening quote already seen; jsonb refuses \u0000 and unpaired surrogates. */
static bool
parse_string(JsonParser *jp)
{
	while (jp->p < jp->end)
	{
		unsigned char c = *jp->p;

		if (c == '"')
		{
			jp->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\')
		{
			jp->p++;
			if (jp->p >= jp->end)
				return false;
			c = *jp->p++;
			if (c == 'u')
			{
				unsigned int cp;
				unsigned int lo;

				if (!parse_hex4(jp, &cp) || cp == 0)
					return false;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return false;
				if (cp >= 0xD800 && cp <= 0xDBFF)
				{
					if (jp->end - jp->p < 6 || jp->p[0] != '\\' || jp->p[1] != 'u')
						return false;
					jp->p += 2;
					if (!parse_hex4(jp, &lo) || lo < 0xDC00 || lo > 0xDFFF)
						return false;
				}
			}
			else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
				return false;
			continue;
		}
		{
			size_t		n = utf8_seq_len(jp->p, (size_t) (jp->end - jp->p));

			if (n == 0)
				return false;
			jp->p += n;
		}
	}
	return false;
}

/* A run of at least one digit. */
static bool
parse_digits(JsonParser *jp)
{
	const unsigned char *start = jp->p;

	while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
		jp->p++;
	return jp->p > start;
}

/* A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
parse_number(JsonParser *jp)
{
	if (jp->p < jp->end && *jp->p == '-')
		jp->p++;
	if (jp->p >= jp->end)
		return false;
	if (*jp->p == '0')
		jp->p++;
	else if (!parse_digits(jp))
		return false;
	if (jp->p < jp->end && *jp->p == '.')
	{
		jp->p++;
		if (!parse_digits(jp))
			return false;
	}
	if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E'))
	{
		jp->p++;
		if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
			jp->p++;
		if (!parse_digits(jp))
			return false;
	}
	return true;
}

/* A literal such as true, false or null. */
static bool
parse_literal(JsonParser *jp, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
		return false;
	jp->p += n;
	return true;
}

/* An object or array, the opening bracket already seen. */
static bool
parse_container(JsonParser *jp, unsigned char close)
{
	bool		ok = false;

	if (++jp->depth > JSON_MAX_DEPTH)
		return false;
	skip_ws(jp);
	if (jp->p < jp->end && *jp->p == close)
	{
		jp->p++;
		jp->depth--;
		return true;
	}
	for (;;)
	{
		if (close == '}')
		{
			skip_ws(jp);
			if (jp->p >= jp->end || *jp->p != '"')
				break;
			jp->p++;
			if (!parse_string(jp))
				break;
			skip_ws(jp);
			if (jp->p >= jp->end || *jp->p != ':')
				break;
			jp->p++;
		}
		if (!parse_value(jp))
			break;
		skip_ws(jp);
		if (jp->p >= jp->end)
			break;
		if (*jp->p == ',')
		{
			jp->p++;
			continue;
		}
		if (*jp->p == close)
		{
			jp->p++;
			ok = true;
		}
		break;
	}
	jp->depth--;
	return ok;
}

/* Any JSON value, after optional whitespace. */
static bool
parse_value(JsonParser *jp)
{
	skip_ws(jp);
	if (jp->p >= jp->end)
		return false;
	switch (*jp->p)
	{
		case '{':
			jp->p++;
			return parse_container(jp, '}');
		case '[':
			jp->p++;
			return parse_container(jp, ']');
		case '"':
			jp->p++;
			return parse_string(jp);
		case 't':
			return parse_literal(jp, "true");
		case 'f':
			return parse_literal(jp, "false");
		case 'n':
			return parse_literal(jp, "null");
		default:
			return parse_number(jp);
	}
}

/* Whether s[0..len) is one JSON value that jsonb would accept. */
bool
json_valid(const char *s, size_t len)
{
	JsonParser	jp = {(const unsigned char *) s, (const unsigned char *) s + len, 0};

	if (!parse_value(&jp))
		return false;
	skip_ws(&jp);
	return jp.p == jp.end;
}

/* Whether s[0..len) is a valid JSON object. */
bool
json_is_object(const char *s, size_t len)
{
	size_t		i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i < len && s[i] == '{' && json_valid(s, len);
}

/* Append code point cp to sb as UTF-8. */
static void
append_utf8(StrBuf *sb, unsigned int cp)
{
	char		buf[4];
	size_t		n;

	if (cp < 0x80)
	{
		buf[0] = (char) cp;
		n = 1;
	}
	else if (cp < 0x800)
	{
		buf[0] = (char) (0xC0 | (cp >> 6));
		buf[1] = (char) (0x80 | (cp & 0x3F));
		n = 2;
	}
	else if (cp < 0x10000)
	{
		buf[0] = (char) (0xE0 | (cp >> 12));
		buf[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		buf[2] = (char) (0x80 | (cp & 0x3F));
		n = 3;
	}
	else
	{
		buf[0] = (char) (0xF0 | (cp >> 18));
		buf[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		buf[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		buf[3] = (char) (0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_append(sb, buf, n);
}

/*
 * Decode the valid JSON string at jp (its opening quote already seen) into
 * sb, leaving jp after the closing quote.
 */
static void
decode_string(JsonParser *jp, StrBuf *sb)
{
	while (jp->p < jp->end && *jp->p != '"')
	{
		unsigned char c = *jp->p++;

		if (c != '\\')
		{
			sb_append(sb, (const char *) &c, 1);
			continue;
		}
		c = *jp->p++;
		switch (c)
		{
			case 'b':
				sb_append(sb, "\b", 1);
				break;
			case 'f':
				sb_append(sb, "\f", 1);
				break;
			case 'n':
				sb_append(sb, "\n", 1);
				break;
			case 'r':
				sb_append(sb, "\r", 1);
				break;
			case 't':
				sb_append(sb, "\t", 1);
				break;
			case 'u':
				{
					unsigned int cp = 0;
					unsigned int lo = 0;

					parse_hex4(jp, &cp);
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						jp->p += 2;
						parse_hex4(jp, &lo);
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					append_utf8(sb, cp);
					break;
				}
			default:			/* " \ / */
				sb_append(sb, (const char *) &c, 1);
				break;
		}
	}
	jp->p++;
}

/*
 * Call each(name, value, value_len, arg) for every top-level member of
 * s[0..len), a valid JSON object (see json_is_object), in order, with its
 * name unescaped and its value as text in s; stop when it returns false.
 * Returns false when s is no object or each stopped.
 */
static bool
json_each_member(const char *s, size_t len,
				 bool (*each) (const StrBuf *name, const char *value, size_t value_len, void *arg),
				 void *arg)
{
	JsonParser	jp = {(const unsigned char *) s, (const unsigned char *) s + len, 0};
	StrBuf		name;
	bool		ok = true;

	skip_ws(&jp);
	if (jp.p >= jp.end || *jp.p != '{')
		return false;
	jp.p++;
	sb_init(&name);
	for (;;)
	{
		const unsigned char *start;

		skip_ws(&jp);
		if (jp.p >= jp.end || *jp.p != '"')
			break;				/* the closing brace of an empty object */
		jp.p++;
		sb_reset(&name);
		decode_string(&jp, &name);
		skip_ws(&jp);
		jp.p++;					/* the colon */
		skip_ws(&jp);
		start = jp.p;
		jp.depth = 0;
		if (!parse_value(&jp))
			break;				/* cannot happen for a valid object */
		if (!each(&name, (const char *) start, (size_t) (jp.p - start), arg))
		{
			ok = false;
			break;
		}
		skip_ws(&jp);
		if (jp.p >= jp.end || *jp.p != ',')
			break;
		jp.p++;
	}
	sb_free(&name);
	return ok;
}

/* What json_object_member looks for, and where it found it last. */
typedef struct MemberSearch
{
	const char *key;
	const char *s;
	bool		found;
	size_t		off;
	size_t		len;
} MemberSearch;

static bool
match_member(const StrBuf *name, const char *value, size_t value_len, void *arg)
{
	MemberSearch *m = arg;

	if (name->len == strlen(m->key) && memcmp(name->data, m->key, name->len) == 0)
	{
		m->found = true;
		m->off = (size_t) (value - m->s);
		m->len = value_len;
	}
	return true;
}

/*
 * Find the top-level member `key` of s[0..len), which must be a valid JSON
 * object (see json_is_object).  Keys are compared after unescaping, and
 * the last of duplicate keys wins, as in jsonb.  Returns whether it is
 * there, with its value at s[*value_off .. *value_off + *value_len).
 */
bool
json_object_member(const char *s, size_t len, const char *key, size_t *value_off, size_t *value_len)
{
	MemberSearch m = {key, s, false, 0, 0};

	(void) json_each_member(s, len, match_member, &m);
	if (m.found)
	{
		*value_off = m.off;
		*value_len = m.len;
	}
	return m.found;
}

/*
 * Whether the number text s[0..len) converts to a float8 that the server
 * takes: finite, and not a non-zero value that underflows to zero (float8in
 * refuses both, and one refused value would refuse a whole batch).
 */
static bool
number_fits_float8(const char *s, size_t len)
{
	char	   *copy = xstrndup(s, len);
	double		v;
	bool		ok;

	errno = 0;
	v = strtod(copy, NULL);
	ok = isfinite(v) && !(errno == ERANGE && v == 0.0);
	free(copy);
	return ok;
}

/* The number of UTF-8 characters of s[0..len) (valid UTF-8). */
static size_t
utf8_chars(const char *s, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char) s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* One member of a metrics object: a name the server takes, a float8 number; counted. */
static bool
metric_member(const StrBuf *name, const char *value, size_t value_len, void *arg)
{
	if (name->len == 0 || utf8_chars(name->data, name->len) > TT_METRIC_NAME_MAX ||
		!(value[0] == '-' || (value[0] >= '0' && value[0] <= '9')) ||
		!number_fits_float8(value, value_len))
		return false;
	(*(int *) arg)++;
	return true;
}

/*
 * The "metrics" of a metrics line: when s[0..len), a valid JSON value, is
 * an object of at least one member, each named with 1 to TT_METRIC_NAME_MAX
 * characters and valued with a number that fits a float8, the number of
 * its members; else -1.  These are the server's checks: a value it would
 * refuse would refuse a whole batch.
 */
int
json_number_object_size(const char *s, size_t len)
{
	int			members = 0;

	if (!json_each_member(s, len, metric_member, &members))
		return -1;
	return members > 0 ? members : -1;
}

/*
 * Whether s[0..len) is a JSON number with an integral value of magnitude
 * under 2^53 (a float8 holds it exactly): a step, as the server takes it.
 */
bool
json_is_integral(const char *s, size_t len)
{
	JsonParser	jp = {(const unsigned char *) s, (const unsigned char *) s + len, 0};
	char	   *copy;
	double		v;

	if (len == 0 || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) || !parse_number(&jp) ||
		jp.p != jp.end)
		return false;
	copy = xstrndup(s, len);
	v = strtod(copy, NULL);
	free(copy);
	return isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0;
}

/* Append s as a JSON string literal; s must be valid UTF-8 (see utf8_sanitize). */
void
json_append_string(StrBuf *sb, const char *s)
{
	sb_append(sb, "\"", 1);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				sb_append(sb, "\\\"", 2);
				break;
			case '\\':
				sb_append(sb, "\\\\", 2);
				break;
			case '\n':
				sb_append(sb, "\\n", 2);
				break;
			case '\r':
				sb_append(sb, "\\r", 2);
				break;
			case '\t':
				sb_append(sb, "\\t", 2);
				break;
			default:
				if (*p < 0x20)
					sb_appendf(sb, "\\u%04x", *p);
				else
					sb_append(sb, (const char *) p, 1);
		}
	}
	sb_append(sb, "\"", 1);
}

/*
 * A copy of s[0..len) that the server will accept as text: invalid UTF-8
 * (such as a multi-byte character cut by a tail buffer) and NUL bytes
 * become '?'.
 */
char *
utf8_sanitize(const char *s, size_t len)
{
	StrBuf		sb;
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	sb_init(&sb);
	while (i < len)
	{
		size_t		n = p[i] == 0 ? 0 : utf8_seq_len(p + i, len - i);

		if (n == 0)
		{
			sb_append(&sb, "?", 1);
			i++;
		}
		else
		{
			sb_append(&sb, s + i, n);
			i += n;
		}
	}
	return sb_steal(&sb);
}
