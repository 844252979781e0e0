# Debian's nginx in the tests: one process, everything under a temporary directory.
# Needs common.bash.

# nginx_conf DIR BODY: DIR/nginx.conf, an nginx without a master process whose pid,
# logs and temporary files stay in DIR, with BODY in its http context.
nginx_conf() {
    local d="$1" body="$2"
    mkdir -p "$d"
    cat > "$d/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
$body
}
NGX
}
