import java.util.HashMap;
import java.util.Map;

/** `--name value` arguments (a name with no value, or followed by another `--name`, is a flag). */
final class Args {
    private final Map<String, String> values = new HashMap<>();

    Args(String[] argv) {
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument " + argv[i]);
            }
            String name = argv[i].substring(2);
            if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) {
                values.put(name, argv[++i]);
            } else {
                values.put(name, "true");
            }
        }
    }

    String str(String name) {
        String v = values.get(name);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }

    String str(String name, String dflt) {
        return values.getOrDefault(name, dflt);
    }

    int num(String name, int dflt) {
        return values.containsKey(name) ? Integer.parseInt(values.get(name)) : dflt;
    }

    long num(String name, long dflt) {
        return values.containsKey(name) ? Long.parseLong(values.get(name)) : dflt;
    }

    boolean flag(String name) {
        return values.containsKey(name);
    }
}
