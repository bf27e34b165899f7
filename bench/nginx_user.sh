# Sourced by the bench scripts. nginx_user DIR prints the "user" directive
# nginx needs to serve DIR: workers started by root run as nobody, and if
# nobody cannot reach DIR (a project under a 0700 home) they must run as us.
nginx_user() {
    [ "$(id -u)" = 0 ] || return 0
    local d="$1"
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        if [ "$(( 0$(stat -c %a "$d") & 1 ))" = 0 ]; then
            echo "user $(id -un) $(id -gn);"
            return 0
        fi
    done
}
